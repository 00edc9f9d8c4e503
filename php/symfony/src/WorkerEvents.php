<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Psr\EventDispatcher\EventDispatcherInterface;
use Symfony\Component\Messenger\Event\WorkerMessageFailedEvent;
use Symfony\Component\Messenger\Event\WorkerRunningEvent;

/**
 * WorkerEvents is the event dispatcher the Consumer gives Symfony's Worker:
 * every event goes to the application's dispatcher unchanged (its
 * listeners, Messenger's retry listener included, run as under
 * messenger:consume), and on the way it notes the failure of the message
 * and stops the Worker once the message was handled, as
 * messenger:consume --limit=1 does.
 */
final class WorkerEvents implements EventDispatcherInterface
{
    private ?\Throwable $failure = null;

    private bool $willRetry = false;

    public function __construct(private readonly EventDispatcherInterface $dispatcher)
    {
    }

    public function dispatch(object $event): object
    {
        if ($event instanceof WorkerMessageFailedEvent) {
            $this->failure = $event->getThrowable();
        }
        $dispatched = $this->dispatcher->dispatch($event);
        if ($event instanceof WorkerMessageFailedEvent) {
            $this->willRetry = $event->willRetry();
        }
        if ($event instanceof WorkerRunningEvent && !$event->isWorkerIdle()) {
            $event->getWorker()->stop();
        }
        return $dispatched;
    }

    /** failure returns what the handling of the message threw, or null when it did not fail. */
    public function failure(): ?\Throwable
    {
        return $this->failure;
    }

    /** willRetry says whether the failed message is to be retried, as the failure's listeners decided. */
    public function willRetry(): bool
    {
        return $this->willRetry;
    }
}
