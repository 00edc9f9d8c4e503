<?php

declare(strict_types=1);

namespace Fpmq\Tests;

use Fpmq\ConfirmTimeoutException;
use Fpmq\NackedException;
use Fpmq\Publisher;
use Fpmq\PublishException;
use Fpmq\ReturnedException;
use Fpmq\TraceContext;
use PhpAmqpLib\Channel\AMQPChannel;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;
use PHPUnit\Framework\TestCase;

/**
 * Publisher against a php-amqplib channel that answers as the broker
 * would: confirm, nack, return, or say nothing. The real broker is
 * integration/phplib_test.go's.
 */
final class PublisherTest extends TestCase
{
    /** @var list<array{AMQPMessage, string, string, bool}> message, exchange, routing key, mandatory */
    private array $published = [];

    /** How the fake broker answers each publish: ack, nack, return, silence, timeout or close. */
    private string $broker = 'ack';

    private ?\Closure $ack = null;

    private ?\Closure $nack = null;

    private ?\Closure $return = null;

    private int $channels = 0;

    /**
     * headers returns $m's headers but the publication time in milliseconds,
     * which every message has: an integer, not before the test began.
     *
     * @return array<string, mixed>
     */
    private static function headers(AMQPMessage $m): array
    {
        $headers = $m->get('application_headers')->getNativeData();
        $ms = $headers[Publisher::HEADER_TIMESTAMP_MS] ?? null;
        self::assertIsInt($ms, 'the publication time in ms');
        self::assertGreaterThanOrEqual(1_765_000_000_000, $ms);
        self::assertLessThanOrEqual((int) (microtime(true) * 1000), $ms);
        unset($headers[Publisher::HEADER_TIMESTAMP_MS]);
        return $headers;
    }

    private function publisher(string $queue = 'commands', int $delayMax = Publisher::DEFAULT_DELAY_MAX): Publisher
    {
        $connection = $this->createMock(AbstractConnection::class);
        $connection->method('channel')->willReturnCallback(fn (): AMQPChannel => $this->channel());
        return new Publisher($connection, $queue, $delayMax, 1.5);
    }

    /** channel returns a fake channel in confirm mode that answers as $this->broker says. */
    private function channel(): AMQPChannel
    {
        $this->channels++;
        $channel = $this->createMock(AMQPChannel::class);
        $channel->method('is_open')->willReturn(true);
        $channel->expects(self::once())->method('confirm_select');
        $channel->method('set_ack_handler')->willReturnCallback(function (callable $f): void {
            $this->ack = \Closure::fromCallable($f);
        });
        $channel->method('set_nack_handler')->willReturnCallback(function (callable $f): void {
            $this->nack = \Closure::fromCallable($f);
        });
        $channel->method('set_return_listener')->willReturnCallback(function (callable $f): void {
            $this->return = \Closure::fromCallable($f);
        });
        $channel->method('basic_publish')->willReturnCallback(
            function (AMQPMessage $m, string $exchange, string $key, bool $mandatory): void {
                $this->published[] = [$m, $exchange, $key, $mandatory];
            }
        );
        $channel->method('wait_for_pending_acks_returns')->willReturnCallback(function (float $timeout): void {
            self::assertSame(1.5, $timeout);
            [$m, , $key] = $this->published[array_key_last($this->published)];
            match ($this->broker) {
                'ack' => ($this->ack)($m),
                'nack' => ($this->nack)($m),
                'return' => [($this->return)(312, 'NO_ROUTE', '', $key, $m), ($this->ack)($m)],
                'silence' => null,
                'timeout' => throw new AMQPTimeoutException('timed out'),
                'close' => throw new \ErrorException('connection lost'),
            };
        });
        return $channel;
    }

    public function testPublishesTheCallersMessage(): void
    {
        $before = time();
        $id = $this->publisher()->publish('send-mail', ['to' => 'a/b', 'n' => 1.0], ['tenant' => 'acme'], 0, 5);

        self::assertMatchesRegularExpression('/^[0-9a-f]{32}$/D', $id);
        self::assertCount(1, $this->published);
        [$m, $exchange, $key, $mandatory] = $this->published[0];
        self::assertSame(['', 'commands', true], [$exchange, $key, $mandatory]);
        self::assertSame('{"to":"a/b","n":1.0}', $m->getBody());
        self::assertSame('application/json', $m->get('content_type'));
        self::assertSame(AMQPMessage::DELIVERY_MODE_PERSISTENT, $m->get('delivery_mode'));
        self::assertSame($id, $m->get('message_id'));
        self::assertSame('send-mail', $m->get('type'));
        self::assertSame(5, $m->get('priority'));
        self::assertGreaterThanOrEqual($before, $m->get('timestamp'));
        self::assertInstanceOf(AMQPTable::class, $m->get('application_headers'));
        self::assertSame(['tenant' => 'acme'], self::headers($m));
        // The same time in milliseconds, in the timestamp's second.
        $ms = $m->get('application_headers')->getNativeData()[Publisher::HEADER_TIMESTAMP_MS];
        self::assertSame($m->get('timestamp'), intdiv($ms, 1000));
    }

    public function testAPlainJobHasNoNameHeadersOrPriority(): void
    {
        $id = $this->publisher()->publish('', [], messageId: 'again-1');

        self::assertSame('again-1', $id);
        $m = $this->published[0][0];
        self::assertSame('{}', $m->getBody());
        foreach (['type', 'priority'] as $property) {
            self::assertFalse($m->has($property), $property);
        }
        self::assertSame([], self::headers($m));
    }

    public function testATraceContextGoesInTheHeaders(): void
    {
        $tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
        $publisher = $this->publisher();
        $publisher->publish('send-mail', ['to' => 'a'], ['tenant' => 'acme'], trace: new TraceContext($tp, 'rojo=1'));
        $publisher->publishRaw('import', 'x', trace: new TraceContext($tp));

        self::assertSame(
            ['tenant' => 'acme', 'traceparent' => $tp, 'tracestate' => 'rojo=1'],
            self::headers($this->published[0][0]),
        );
        self::assertSame(['traceparent' => $tp], self::headers($this->published[1][0]));
    }

    public function testPublishRaw(): void
    {
        $this->publisher('rawjobs')->publishRaw('import', "a,b\n1,2\n", 'text/csv');

        [$m, , $key] = $this->published[0];
        self::assertSame('rawjobs', $key);
        self::assertSame("a,b\n1,2\n", $m->getBody());
        self::assertSame('text/csv', $m->get('content_type'));
    }

    public function testANestedTableHeaderIsKept(): void
    {
        $this->publisher()->publishRaw('x', '{}', 'application/json', ['laravel' => new AMQPTable(['attempts' => 2])]);

        self::assertSame(['laravel' => ['attempts' => 2]], self::headers($this->published[0][0]));
    }

    public function testADelayedJobGoesToItsDelayQueue(): void
    {
        $before = microtime(true);
        $this->publisher()->publish('later', ['n' => 1], delay: 30);
        $after = microtime(true);

        [$m, , $key] = $this->published[0];
        self::assertSame('commands.delay.16s', $key);
        $due = $m->get('application_headers')->getNativeData()[Publisher::HEADER_DUE];
        self::assertIsInt($due);
        self::assertGreaterThanOrEqual((int) floor(($before + 30) * 1000), $due);
        self::assertLessThanOrEqual((int) ceil(($after + 30) * 1000), $due);
    }

    /**
     * @return iterable<string, array{string, class-string<PublishException>, string}>
     */
    public static function refusals(): iterable
    {
        yield 'returned' => ['return', ReturnedException::class, 'as unroutable: 312 NO_ROUTE: no queue commands'];
        yield 'nacked' => ['nack', NackedException::class, 'refused job'];
        yield 'timed out' => ['timeout', ConfirmTimeoutException::class, 'not confirmed within 1.5 s'];
        yield 'no confirm' => ['silence', PublishException::class, 'not confirmed'];
        yield 'connection lost' => ['close', PublishException::class, 'not confirmed: connection lost'];
    }

    /**
     * @dataProvider refusals
     * @param class-string<PublishException> $class
     */
    public function testAJobTheBrokerDidNotConfirmThrows(string $broker, string $class, string $message): void
    {
        $this->broker = $broker;
        try {
            $this->publisher()->publish('x', ['n' => 1], messageId: 'm-1');
            self::fail('no exception');
        } catch (PublishException $e) {
            self::assertSame($class, get_class($e));
            self::assertSame('m-1', $e->getMessageId());
            self::assertStringContainsString($message, $e->getMessage());
            if ($e instanceof ReturnedException) {
                self::assertSame(312, $e->getReplyCode());
                self::assertSame('commands', $e->getRoutingKey());
            }
        }
    }

    public function testAChannelInDoubtIsNotUsedAgain(): void
    {
        $publisher = $this->publisher();
        $this->broker = 'timeout';
        try {
            $publisher->publish('x', ['n' => 1]);
            self::fail('no exception');
        } catch (ConfirmTimeoutException) {
        }
        $this->broker = 'ack';
        $publisher->publish('x', ['n' => 2]);
        $publisher->publish('x', ['n' => 3]);
        self::assertSame(2, $this->channels);
    }

    /**
     * @return iterable<string, array{callable(Publisher): mixed, string}>
     */
    public static function badArguments(): iterable
    {
        yield 'a list payload' => [static fn (Publisher $p) => $p->publish('x', [1, 2]), 'not a list'];
        yield 'a long name' => [static fn (Publisher $p) => $p->publish(str_repeat('n', 256), []), 'at most 255 bytes'];
        yield 'priority 256' => [static fn (Publisher $p) => $p->publish('x', [], priority: 256), '0 to 255, not 256'];
        yield 'priority -1' => [static fn (Publisher $p) => $p->publish('x', [], priority: -1), '0 to 255, not -1'];
        yield 'a negative delay' => [static fn (Publisher $p) => $p->publish('x', [], delay: -1), 'delay must be'];
        yield 'past 168 h' => [static fn (Publisher $p) => $p->publish('x', [], delay: 604801), 'delay must be'];
        yield 'an infinite delay' => [static fn (Publisher $p) => $p->publish('x', [], delay: INF), 'delay must be'];
        yield 'no message id' => [static fn (Publisher $p) => $p->publish('x', [], messageId: ''), '1 to 255 bytes'];
        yield 'an empty header name' => [static fn (Publisher $p) => $p->publish('x', [], ['' => 'v']), 'header name'];
        yield 'an x-fpmq header' => [
            static fn (Publisher $p) => $p->publish('x', [], ['X-Fpmq-Due' => 1]),
            'x-fpmq- headers are the daemon\'s',
        ];
        yield 'an array header' => [
            static fn (Publisher $p) => $p->publish('x', [], ['tags' => ['a']]),
            'a string, int, float, bool or AMQPTable',
        ];
        yield 'no content type' => [static fn (Publisher $p) => $p->publishRaw('x', 'b', ''), 'content type'];
    }

    /**
     * @dataProvider badArguments
     * @param callable(Publisher): mixed $publish
     */
    public function testABadArgumentPublishesNothing(callable $publish, string $message): void
    {
        try {
            $publish($this->publisher());
            self::fail('no exception');
        } catch (\InvalidArgumentException $e) {
            self::assertStringContainsString($message, $e->getMessage());
        }
        self::assertSame([], $this->published);
    }

    public function testABadPayloadPublishesNothing(): void
    {
        $this->expectException(\JsonException::class);
        try {
            $this->publisher()->publish('x', ['bad' => "\xff"]);
        } finally {
            self::assertSame([], $this->published);
        }
    }

    /**
     * @return iterable<string, array{string, string, int, int}>
     */
    public static function delayQueues(): iterable
    {
        yield 'under a second' => ['commands', 'commands', 0, 604800];
        yield 'a second' => ['commands.delay.1s', 'commands', 1, 604800];
        yield '30 s' => ['commands.delay.16s', 'commands', 30, 604800];
        yield '64 s' => ['commands.delay.1m4s', 'commands', 64, 604800];
        yield 'an hour' => ['commands.delay.34m8s', 'commands', 3600, 604800];
        yield '168 h' => ['commands.delay.145h38m8s', 'commands', 604800, 604800];
        yield 'past DELAY_MAX' => ['reports.delay.1m4s', 'reports', 3600, 100];
    }

    /** @dataProvider delayQueues */
    public function testDelayQueue(string $want, string $queue, int $seconds, int $delayMax): void
    {
        self::assertSame($want, Publisher::delayQueue($queue, $seconds, $delayMax));
    }

    public function testConstructorChecksItsArguments(): void
    {
        $connection = $this->createMock(AbstractConnection::class);
        foreach (
            [
                'the queue name is empty' => static fn () => new Publisher($connection, ''),
                'delayMax must be at least 1 second' => static fn () => new Publisher($connection, 'q', 0),
                'confirmTimeout must be positive' => static fn () => new Publisher($connection, 'q', 1, 0.0),
            ] as $message => $construct
        ) {
            try {
                $construct();
                self::fail("{$message}: no exception");
            } catch (\InvalidArgumentException $e) {
                self::assertStringContainsString($message, $e->getMessage());
            }
        }
    }

    public function testConnectRefusesANonAmqpUrlWithoutRepeatingIt(): void
    {
        try {
            Publisher::connect('https://user:s3cret@rabbitmq/fpmq');
            self::fail('no exception');
        } catch (\InvalidArgumentException $e) {
            self::assertStringContainsString('not an AMQP URL', $e->getMessage());
            self::assertStringNotContainsString('s3cret', $e->getMessage());
        }
    }
}
