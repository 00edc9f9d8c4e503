<?php

declare(strict_types=1);

namespace App\Messenger;

use App\Message\Noop;
use App\Message\Task;
use App\RunLog;
use Symfony\Component\EventDispatcher\EventSubscriberInterface;
use Symfony\Component\Messenger\Event\AbstractWorkerMessageEvent;
use Symfony\Component\Messenger\Event\WorkerMessageFailedEvent;
use Symfony\Component\Messenger\Event\WorkerMessageHandledEvent;
use Symfony\Component\Messenger\Event\WorkerMessageReceivedEvent;
use Symfony\Component\Messenger\Event\WorkerMessageRetriedEvent;

/** WorkerEventLog records the Worker's message events in the RunLog, as a listener of the application would see them. */
final class WorkerEventLog implements EventSubscriberInterface
{
    public static function getSubscribedEvents(): array
    {
        return [
            WorkerMessageReceivedEvent::class => 'record',
            WorkerMessageHandledEvent::class => 'record',
            // After Messenger's retry listener (100), which decides willRetry.
            WorkerMessageFailedEvent::class => ['record', -200],
            WorkerMessageRetriedEvent::class => 'record',
        ];
    }

    public function record(AbstractWorkerMessageEvent $event): void
    {
        $message = $event->getEnvelope()->getMessage();
        if ($message instanceof Noop) {
            return; // the benchmark's message records nothing
        }
        $name = (new \ReflectionClass($event))->getShortName();
        RunLog::write([
            'kind' => 'event',
            'event' => $name,
            'id' => $message instanceof Task ? $message->id : '',
            'transport' => $event->getReceiverName(),
            'will_retry' => $event instanceof WorkerMessageFailedEvent ? $event->willRetry() : null,
        ]);
    }
}
