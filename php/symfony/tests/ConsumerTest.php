<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests;

use Fpmq\Symfony\Consumer;
use Fpmq\Symfony\FailureSenderLocator;
use Fpmq\Symfony\FpmqReceivedStamp;
use Fpmq\Symfony\Outcome;
use Fpmq\Symfony\RetrySenderLocator;
use Fpmq\Symfony\Run;
use Fpmq\Symfony\Tests\Fixtures\Jobs;
use Fpmq\Symfony\Tests\Fixtures\Ping;
use Fpmq\Symfony\Tests\Fixtures\PingHandler;
use Fpmq\Worker\Job;
use PHPUnit\Framework\TestCase;
use Symfony\Component\DependencyInjection\ServiceLocator;
use Symfony\Component\EventDispatcher\EventDispatcher;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Event\WorkerMessageFailedEvent;
use Symfony\Component\Messenger\Event\WorkerMessageHandledEvent;
use Symfony\Component\Messenger\Event\WorkerMessageReceivedEvent;
use Symfony\Component\Messenger\Event\WorkerMessageRetriedEvent;
use Symfony\Component\Messenger\EventListener\SendFailedMessageForRetryListener;
use Symfony\Component\Messenger\EventListener\SendFailedMessageToFailureTransportListener;
use Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException;
use Symfony\Component\Messenger\Handler\HandlerDescriptor;
use Symfony\Component\Messenger\Handler\HandlersLocator;
use Symfony\Component\Messenger\MessageBus;
use Symfony\Component\Messenger\Middleware\HandleMessageMiddleware;
use Symfony\Component\Messenger\Middleware\MiddlewareInterface;
use Symfony\Component\Messenger\Middleware\StackInterface;
use Symfony\Component\Messenger\Retry\MultiplierRetryStrategy;
use Symfony\Component\Messenger\Stamp\ConsumedByWorkerStamp;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Transport\InMemory\InMemoryTransport;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Transport\Serialization\Serializer;

/**
 * The Consumer on Symfony's own Worker, bus, retry and failure listeners
 * and serializers, wired as FrameworkBundle wires them, with the transport
 * "async" (retry strategy: 2 retries, 1000 ms, multiplier 2), "json" (the
 * Symfony serializer) and "plain" (no retry strategy).
 */
final class ConsumerTest extends TestCase
{
    private InMemoryTransport $async;

    private InMemoryTransport $other;

    private InMemoryTransport $failed;

    private Run $run;

    private Consumer $consumer;

    /** @var list<string> the Worker events, "EventClass id" */
    private array $events = [];

    /** @var list<Envelope> the envelopes the handler was dispatched with */
    private array $dispatched = [];

    protected function setUp(): void
    {
        PingHandler::$handled = [];
        $this->async = new InMemoryTransport();
        $this->other = new InMemoryTransport();
        $this->failed = new InMemoryTransport();
        $this->run = new Run();
        $dispatcher = new EventDispatcher();
        $senders = new ServiceLocator(['async' => fn () => $this->async, 'other' => fn () => $this->other]);
        $strategies = new ServiceLocator([
            'async' => static fn () => new MultiplierRetryStrategy(2, 1000, 2),
            'json' => static fn () => new MultiplierRetryStrategy(2, 1000, 2),
        ]);
        $dispatcher->addSubscriber(new SendFailedMessageForRetryListener(
            new RetrySenderLocator($senders, $this->run),
            $strategies,
            null,
            $dispatcher,
        ));
        $failureSenders = new ServiceLocator(['async' => fn () => $this->failed, 'other' => fn () => $this->failed]);
        $dispatcher->addSubscriber(new SendFailedMessageToFailureTransportListener(
            new FailureSenderLocator($failureSenders, $this->run),
        ));
        $events = [
            WorkerMessageReceivedEvent::class, WorkerMessageHandledEvent::class,
            WorkerMessageFailedEvent::class, WorkerMessageRetriedEvent::class,
        ];
        foreach ($events as $event) {
            $dispatcher->addListener($event, function (object $e): void {
                $message = $e->getEnvelope()->getMessage();
                $this->events[] = (new \ReflectionClass($e))->getShortName() . ' ' . $message->id;
            });
        }
        $record = new class ($this->dispatched) implements MiddlewareInterface {
            /** @param list<Envelope> $dispatched */
            public function __construct(private array &$dispatched)
            {
            }

            public function handle(Envelope $envelope, StackInterface $stack): Envelope
            {
                $this->dispatched[] = $envelope;
                return $stack->next()->handle($envelope, $stack);
            }
        };
        $bus = new MessageBus([
            $record,
            new HandleMessageMiddleware(
                new HandlersLocator([Ping::class => [new HandlerDescriptor(new PingHandler())]]),
            ),
        ]);
        $serializers = new ServiceLocator([
            'async' => static fn () => new PhpSerializer(),
            'json' => static fn () => Serializer::create(),
            'plain' => static fn () => new PhpSerializer(),
        ]);
        $this->consumer = new Consumer($serializers, $bus, $dispatcher, $strategies, $this->run);
    }

    private static function job(Ping $ping, int $attempt = 1, Envelope ...$envelope): Job
    {
        $encoded = (new PhpSerializer())->encode($envelope[0] ?? new Envelope($ping));
        return Jobs::job($encoded['body'], [], $attempt);
    }

    public function testHandledOnceAsMessengerConsumeDispatchesIt(): void
    {
        $outcome = $this->consumer->consume(self::job(new Ping('p-ok')), 'async');

        self::assertSame(Outcome::HANDLED, $outcome->kind);
        self::assertSame(['p-ok'], PingHandler::$handled);
        self::assertSame(['WorkerMessageReceivedEvent p-ok', 'WorkerMessageHandledEvent p-ok'], $this->events);
        $envelope = $this->dispatched[0];
        self::assertSame('async', $envelope->last(ReceivedStamp::class)?->getTransportName());
        self::assertNotNull($envelope->last(ConsumedByWorkerStamp::class));
        self::assertNull($envelope->last(RedeliveryStamp::class));
        $fpmq = $envelope->last(FpmqReceivedStamp::class);
        self::assertInstanceOf(FpmqReceivedStamp::class, $fpmq);
        self::assertSame([1, 5, 'messages'], [$fpmq->attempt, $fpmq->maxAttempts, $fpmq->queue]);
        self::assertStringStartsWith('sha256:', $fpmq->jobId);
    }

    public function testAFailureRunsAgainAfterTheStrategysDelayWithoutBeingPublished(): void
    {
        $first = $this->consumer->consume(self::job(new Ping('p-fail', 'fail')), 'async');
        $second = $this->consumer->consume(self::job(new Ping('p-fail', 'fail'), 2), 'async');

        self::assertSame(
            [Outcome::RETRY, 1000, 'RuntimeException: boom p-fail'],
            [$first->kind, $first->delayMs, $first->reason],
        );
        self::assertSame([Outcome::RETRY, 2000], [$second->kind, $second->delayMs]);
        self::assertSame(1, RedeliveryStamp::getRetryCountFromEnvelope($this->dispatched[1]), 'attempt 2 is retry 1');
        self::assertSame([], $this->async->getSent(), 'Symfony published a retry to the transport');
        self::assertContains('WorkerMessageRetriedEvent p-fail', $this->events);
    }

    public function testTheStrategyGivesUpAfterMaxRetriesAndNoFailureTransportGetsIt(): void
    {
        $outcome = $this->consumer->consume(self::job(new Ping('p-fail', 'fail'), 3), 'async');

        self::assertSame([Outcome::FAILED, 'RuntimeException: boom p-fail'], [$outcome->kind, $outcome->reason]);
        self::assertSame([], $this->failed->getSent(), 'Symfony sent the message to its failure transport');
        self::assertSame([], $this->async->getSent());
    }

    public function testTheEnvelopesOwnRetriesCount(): void
    {
        // Retried once by messenger:consume before the switch: attempt 2
        // under fpmq is its retry 2, the last of 2.
        $envelope = new Envelope(new Ping('p-old', 'fail'), [new RedeliveryStamp(1)]);
        $outcome = $this->consumer->consume(self::job(new Ping('p-old'), 2, $envelope), 'async');

        self::assertSame(2, RedeliveryStamp::getRetryCountFromEnvelope($this->dispatched[0]));
        self::assertSame(Outcome::FAILED, $outcome->kind);
    }

    public function testAnUnrecoverableExceptionFailsAtOnce(): void
    {
        $outcome = $this->consumer->consume(self::job(new Ping('p-gone', 'unrecoverable')), 'async');

        self::assertSame(Outcome::FAILED, $outcome->kind);
        self::assertSame(UnrecoverableMessageHandlingException::class . ': gone p-gone', $outcome->reason);
        self::assertSame([], $this->failed->getSent());
    }

    public function testARecoverableExceptionRunsAgainWhateverTheCount(): void
    {
        $outcome = $this->consumer->consume(self::job(new Ping('p-later', 'recoverable'), 10), 'async');

        self::assertSame([Outcome::RETRY, 1000 * 2 ** 9], [$outcome->kind, $outcome->delayMs]);
    }

    public function testWithoutARetryStrategyFpmqsBackoffApplies(): void
    {
        $failing = $this->consumer->consume(self::job(new Ping('p-plain', 'fail')), 'plain');
        $unrecoverable = $this->consumer->consume(self::job(new Ping('p-plain', 'unrecoverable')), 'plain');

        self::assertSame([Outcome::RETRY, null], [$failing->kind, $failing->delayMs]);
        self::assertSame(Outcome::FAILED, $unrecoverable->kind);
    }

    public function testABodyThatIsNoEnvelopeIsUndecodable(): void
    {
        $php = $this->consumer->consume(Jobs::job('{"to":"a@b"}'), 'async');
        $json = $this->consumer->consume(Jobs::job('{"id":"p-1"}'), 'json');

        self::assertSame(Outcome::UNDECODABLE, $php->kind);
        self::assertStringStartsWith(
            'not a Symfony Messenger envelope of transport "async" as ' . PhpSerializer::class . ' encodes it: ',
            $php->reason,
        );
        self::assertSame(Outcome::UNDECODABLE, $json->kind);
        self::assertStringContainsString('as ' . Serializer::class . ' encodes it: ', $json->reason);
        self::assertStringContainsString('"headers"', $json->reason);
        self::assertSame([], PingHandler::$handled);
    }

    public function testAMessageOfTheSymfonySerializerRuns(): void
    {
        $encoded = Serializer::create()->encode(new Envelope(new Ping('p-json')));
        unset($encoded['headers']['Content-Type']);

        $outcome = $this->consumer->consume(Jobs::job($encoded['body'], $encoded['headers']), 'json');

        self::assertSame(Outcome::HANDLED, $outcome->kind);
        self::assertSame(['p-json'], PingHandler::$handled);
    }

    public function testAnUnknownTransportIsAnError(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('no Messenger transport "nope"');

        $this->consumer->consume(self::job(new Ping('p')), 'nope');
    }

    public function testOtherTransportsKeepTheirSendersDuringARun(): void
    {
        $retry = new RetrySenderLocator(new ServiceLocator(['other' => fn () => $this->other]), $this->run);
        $failure = new FailureSenderLocator(new ServiceLocator(['other' => fn () => $this->failed]), $this->run);
        $this->run->start('async');

        self::assertSame($this->other, $retry->get('other'));
        self::assertTrue($failure->has('other'));
        self::assertFalse($failure->has('async'));
        self::assertTrue($retry->has('async'));
        self::assertNotSame($this->async, $retry->get('async'));

        $this->run->finish();
        self::assertFalse($retry->has('async'));
    }
}
