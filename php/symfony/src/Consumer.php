<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Fpmq\Worker\Job;
use Psr\Container\ContainerInterface;
use Psr\EventDispatcher\EventDispatcherInterface;
use Psr\Log\LoggerInterface;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Exception\MessageDecodingFailedException;
use Symfony\Component\Messenger\Exception\UnrecoverableExceptionInterface;
use Symfony\Component\Messenger\Exception\WrappedExceptionsInterface;
use Symfony\Component\Messenger\MessageBusInterface;
use Symfony\Component\Messenger\Stamp\DelayStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Transport\Serialization\SerializerInterface;
use Symfony\Component\Messenger\Worker;

/**
 * Consumer runs one fpmq job as messenger:consume runs one message of a
 * transport: it decodes the job with the transport's serializer and hands
 * the envelope to Symfony's own Worker, which dispatches it on the routable
 * bus with ReceivedStamp and ConsumedByWorkerStamp, fires the Worker*
 * events and applies the transport's retry strategy through Messenger's
 * retry listener. It returns the Outcome; the daemon settles the delivery
 * from its answer (Outcome::answer).
 *
 * Attempts: the daemon runs a failed message again from the same body, so
 * the envelope never carries the RedeliveryStamp Symfony would have added
 * when sending it again. The Consumer adds one for attempt n (n > 1), with
 * the envelope's own retry count + n - 1, so that the retry strategy
 * counts retries (max_retries, the multiplier's growing delay) as under
 * messenger:consume.
 */
final class Consumer
{
    /**
     * @param ContainerInterface $serializers each transport's serializer (SerializerInterface), by transport name
     * @param MessageBusInterface $bus the bus messenger:consume dispatches on (messenger.routable_message_bus)
     * @param EventDispatcherInterface $dispatcher the application's event dispatcher
     * @param ContainerInterface $retryStrategies Messenger's retry strategy locator, by transport name
     * @param Run $run the run that Messenger's retry and failure listeners consult (see FpmqPass)
     */
    public function __construct(
        private readonly ContainerInterface $serializers,
        private readonly MessageBusInterface $bus,
        private readonly EventDispatcherInterface $dispatcher,
        private readonly ContainerInterface $retryStrategies,
        private readonly Run $run,
        private readonly ?LoggerInterface $logger = null,
    ) {
    }

    /**
     * consume runs $job as a message of $transport and returns what became
     * of it. It does not answer the daemon: call answer() on the result.
     *
     * @throws \InvalidArgumentException when the application has no transport $transport the bundle can decode for
     * @throws \Fpmq\Worker\InvalidParamException when the daemon's params are missing or malformed
     * @throws \Throwable what the Worker or an event listener throws outside a handler, as messenger:consume would
     */
    public function consume(Job $job, string $transport): Outcome
    {
        $envelope = $this->decode($job, $transport);
        if ($envelope instanceof Outcome) {
            return $envelope;
        }
        $receiver = new OneMessageReceiver($this->received($envelope, $job));
        $events = new WorkerEvents($this->dispatcher);
        $worker = new Worker([$transport => $receiver], $this->bus, $events, $this->logger);
        $this->run->start($transport);
        try {
            $worker->run(['sleep' => 0]);
        } finally {
            $this->run->finish();
        }
        return $this->outcome($transport, $receiver, $events);
    }

    /** decode returns the job's envelope, or the Outcome of a message the transport's serializer cannot decode. */
    private function decode(Job $job, string $transport): Envelope|Outcome
    {
        if (!$this->serializers->has($transport)) {
            throw new \InvalidArgumentException(
                "fpmq: no Messenger transport \"{$transport}\" that fpmq can run: name one of"
                . ' framework.messenger.transports, with Fpmq\Symfony\FpmqBundle in the kernel\'s bundles'
            );
        }
        $serializer = $this->serializers->get($transport);
        if (!$serializer instanceof SerializerInterface) {
            throw new \InvalidArgumentException(
                "fpmq: the serializer of transport \"{$transport}\" is no Messenger serializer"
            );
        }
        $encoded = EncodedEnvelope::fromJob($job);
        try {
            return $serializer->decode($encoded);
        } catch (MessageDecodingFailedException $e) {
            $omitted = $encoded['headers'] === [] && in_array('x-fpmq-message', $job->omittedHeaders(), true)
                ? ' (the daemon left its headers out as too large)' : '';
            return Outcome::undecodable(sprintf(
                'not a Symfony Messenger envelope of transport "%s" as %s encodes it%s: %s',
                $transport,
                $serializer::class,
                $omitted,
                $e->getMessage(),
            ), $e);
        }
    }

    /** received adds the job's stamps: its redelivery count from fpmq's attempt, and FpmqReceivedStamp. */
    private function received(Envelope $envelope, Job $job): Envelope
    {
        $attempt = $job->attempt();
        if ($attempt > 1) {
            $retries = RedeliveryStamp::getRetryCountFromEnvelope($envelope) + $attempt - 1;
            $envelope = $envelope->with(new RedeliveryStamp($retries));
        }
        return $envelope->with(new FpmqReceivedStamp($job->id(), $attempt, $job->maxAttempts(), $job->queue()));
    }

    private function outcome(string $transport, OneMessageReceiver $receiver, WorkerEvents $events): Outcome
    {
        $failure = $events->failure();
        $settled = $receiver->settled();
        if ($settled === null) {
            return Outcome::unsettled();
        }
        if ($failure === null) {
            return Outcome::handled();
        }
        if ($settled && $events->willRetry()) {
            $delay = $this->run->retry()?->last(DelayStamp::class);
            return Outcome::retry($failure, $delay instanceof DelayStamp ? $delay->getDelay() : null);
        }
        if (!$this->retryStrategies->has($transport) && !self::unrecoverable($failure)) {
            // No retry strategy of the application's: fpmq's own backoff.
            return Outcome::retry($failure, null);
        }
        return Outcome::failed($failure);
    }

    /** unrecoverable says whether $failure, or every exception it wraps, is unrecoverable. */
    private static function unrecoverable(\Throwable $failure): bool
    {
        if ($failure instanceof UnrecoverableExceptionInterface) {
            return true;
        }
        if (!$failure instanceof WrappedExceptionsInterface) {
            return false;
        }
        $wrapped = $failure->getWrappedExceptions();
        foreach ($wrapped as $e) {
            if (!$e instanceof UnrecoverableExceptionInterface) {
                return false;
            }
        }
        return $wrapped !== [];
    }
}
