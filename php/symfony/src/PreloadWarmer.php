<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Fpmq\Worker\Job;
use Fpmq\Worker\Message;
use Fpmq\Worker\PhpHeaderEmitter;
use Fpmq\Worker\Properties;
use Fpmq\Worker\Table;
use Symfony\Component\Clock\NativeClock;
use Symfony\Component\HttpKernel\CacheWarmer\CacheWarmerInterface;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Event;
use Symfony\Component\Messenger\Middleware\StackMiddleware;
use Symfony\Component\Messenger\Stamp;
use Symfony\Component\Messenger\Worker;

/**
 * PreloadWarmer adds the classes that Runner::run loads for every message,
 * beyond the container's services, to the preload file the kernel writes
 * beside its container (var/cache/<env>/App_KernelProdContainer.preload.php,
 * which a Symfony skeleton's config/preload.php requires): with
 * opcache.preload set to config/preload.php, php-fpm links them once at its
 * start instead of in every request. It writes nothing itself: the kernel
 * appends what warmUp returns (Symfony's Preloader follows each class's
 * parents, interfaces and declared types).
 */
final class PreloadWarmer implements CacheWarmerInterface
{
    /** The classes of a run: fpmq's, and the Messenger worker's that no service holds. */
    private const CLASSES = [
        Runner::class, Consumer::class, Outcome::class, EncodedEnvelope::class, OneMessageReceiver::class,
        WorkerEvents::class, FpmqReceivedStamp::class, Run::class,
        Job::class, PhpHeaderEmitter::class, Message::class, Properties::class, Table::class,
        Worker::class, Envelope::class, StackMiddleware::class, NativeClock::class,
        Event\WorkerStartedEvent::class, Event\WorkerRunningEvent::class, Event\WorkerStoppedEvent::class,
        Event\WorkerMessageReceivedEvent::class, Event\WorkerMessageHandledEvent::class,
        Event\WorkerMessageFailedEvent::class,
        Stamp\ReceivedStamp::class, Stamp\ConsumedByWorkerStamp::class, Stamp\AckStamp::class,
        Stamp\BusNameStamp::class, Stamp\HandlerArgumentsStamp::class, Stamp\HandledStamp::class,
        Stamp\RedeliveryStamp::class, Stamp\DelayStamp::class, Stamp\NonSendableStampInterface::class,
    ];

    /** isOptional is false: the kernel runs the warmer whenever it builds the container, not only in cache:warmup. */
    public function isOptional(): bool
    {
        return false;
    }

    /**
     * warmUp returns the class names to preload.
     *
     * @return list<string>
     */
    public function warmUp(string $cacheDir, ?string $buildDir = null): array
    {
        return self::CLASSES;
    }
}
