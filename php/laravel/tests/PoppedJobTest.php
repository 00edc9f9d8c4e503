<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests;

use Fpmq\Laravel\FpmqQueue;
use Fpmq\Laravel\PoppedJob;
use Fpmq\Laravel\Tests\Fixtures\Log;
use Fpmq\Laravel\Tests\Fixtures\TestJob;
use Illuminate\Foundation\Application;
use Illuminate\Queue\Connectors\ConnectorInterface;
use Illuminate\Queue\WorkerOptions;
use PhpAmqpLib\Channel\AMQPChannel;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;
use PHPUnit\Framework\Attributes\DataProvider;
use PHPUnit\Framework\TestCase;

/**
 * PoppedJobTest runs `queue:work`'s Worker on an fpmq connection whose
 * broker is a fake php-amqplib connection: pop() takes the ready messages
 * with basic.get, and the test checks what the Worker's decisions did to
 * the broker (acks, republished copies). The real broker is the framework
 * benchmark's (integration/fwbench).
 */
final class PoppedJobTest extends TestCase
{
    private Application $app;

    /** @var list<AMQPMessage> what basic.get hands out, in order */
    private array $ready = [];

    /** @var list<string> what reached the broker, in order: "ack TAG", "publish KEY" */
    private array $broker = [];

    /** @var list<AMQPMessage> the published copies */
    private array $published = [];

    private bool $queueExists = true;

    private ?\Closure $confirm = null;

    protected function setUp(): void
    {
        Log::$entries = [];
        $this->app = TestApplication::create();
        $connection = $this->createMock(AbstractConnection::class);
        $connection->method('isConnected')->willReturn(true);
        $connection->method('channel')->willReturnCallback(fn (): AMQPChannel => $this->channel());
        $queue = new FpmqQueue(static fn (): AbstractConnection => $connection, 'jobs', 604800, 1.5);
        $connector = new class ($queue) implements ConnectorInterface {
            public function __construct(private readonly FpmqQueue $queue)
            {
            }

            /** @param array<string, mixed> $config */
            public function connect(array $config): FpmqQueue
            {
                return $this->queue;
            }
        };
        $this->app->make('config')->set('queue.connections.fake', ['driver' => 'fake']);
        $this->app->make('queue')->addConnector('fake', static fn (): ConnectorInterface => $connector);
    }

    /** channel returns a fake channel: basic.get from $this->ready, acks and confirmed publishes recorded. */
    private function channel(): AMQPChannel
    {
        $channel = $this->createMock(AMQPChannel::class);
        $channel->method('is_open')->willReturn(true);
        $channel->method('basic_get')->willReturnCallback(function (string $queue) use ($channel): ?AMQPMessage {
            if (!$this->queueExists) {
                throw new AMQPProtocolChannelException(404, "NOT_FOUND - no queue '{$queue}'", [60, 70]);
            }
            $m = array_shift($this->ready);
            $m?->setChannel($channel);
            return $m;
        });
        $channel->method('basic_ack')->willReturnCallback(function (int $tag): void {
            $this->broker[] = "ack {$tag}";
        });
        $channel->method('set_ack_handler')->willReturnCallback(function (callable $f): void {
            $this->confirm = \Closure::fromCallable($f);
        });
        $channel->method('basic_publish')->willReturnCallback(function (AMQPMessage $m, string $x, string $key): void {
            $this->broker[] = "publish {$key}";
            $this->published[] = $m;
        });
        $channel->method('wait_for_pending_acks_returns')->willReturnCallback(function (): void {
            ($this->confirm)($this->published[array_key_last($this->published)]);
        });
        return $channel;
    }

    /**
     * enqueue makes $job ready in the fake queue as delivery $tag, with AMQP headers $headers.
     *
     * @param array<string, mixed> $headers
     */
    private function enqueue(object $job, int $tag, array $headers = []): void
    {
        $properties = ['message_id' => "m-{$tag}", 'content_type' => 'application/json'];
        if ($headers !== []) {
            $properties['application_headers'] = new AMQPTable($headers);
        }
        $m = new AMQPMessage(TestApplication::payload($this->app, $job), $properties);
        $m->setDeliveryInfo($tag, false, '', 'jobs');
        $this->ready[] = $m;
    }

    /** work runs queue:work's Worker for one job of the queue "jobs", as `queue:work fake --tries=3` would. */
    private function work(): void
    {
        $options = new WorkerOptions('default', 0, 128, 0, 0, 3);
        $this->app->make('queue.worker')->runNextJob('fake', 'jobs', $options);
    }

    public function testAnEmptyOrMissingQueueHasNothingToPop(): void
    {
        $queue = $this->app->make('queue')->connection('fake');
        self::assertNull($queue->pop());
        $this->queueExists = false;
        self::assertNull($queue->pop('gone'));
        self::assertSame([], $this->broker);
    }

    public function testASucceedingJobIsAcked(): void
    {
        $this->enqueue(new TestJob('a'), 7);
        $this->work();
        self::assertSame(['run a 1'], Log::$entries);
        self::assertSame(['ack 7'], $this->broker);
    }

    public function testReleaseRepublishesACountedCopyThenAcks(): void
    {
        $this->enqueue(new TestJob('r', ['release:5']), 3);
        $body = $this->ready[0]->getBody();
        $this->work();
        self::assertSame(['publish jobs.delay.4s', 'ack 3'], $this->broker);
        $copy = $this->published[0];
        $headers = $copy->get('application_headers')->getNativeData();
        self::assertSame(['attempts' => 1], $headers['laravel']);
        self::assertGreaterThan((microtime(true) + 4) * 1000, $headers['x-fpmq-due']);
        self::assertSame($body, $copy->getBody());
        self::assertSame(json_decode($body, true)['uuid'], $copy->get('message_id'));

        // The copy runs as attempt 2.
        $copy->setDeliveryInfo(4, false, '', 'jobs');
        $this->ready[] = $copy;
        $this->work();
        self::assertSame(['run r 1', 'run r 2'], Log::$entries);
    }

    public function testAnExceptionIsRetriedAtOnceUntilTheTriesThenFailed(): void
    {
        $this->enqueue(new TestJob('t', ['throw']), 1);
        for ($tag = 1; $tag <= 3; $tag++) {
            $this->work();
            if ($tag < 3) {
                $copy = $this->published[array_key_last($this->published)];
                $copy->setDeliveryInfo($tag + 1, false, '', 'jobs');
                $this->ready[] = $copy;
            }
        }
        self::assertSame(
            ['run t 1', 'run t 2', 'run t 3', 'failed t RuntimeException: t broke on attempt 3'],
            Log::$entries,
        );
        // queue:work's command, not the Worker, records it in the failed-jobs store.
        self::assertSame(['publish jobs', 'ack 1', 'publish jobs', 'ack 2', 'ack 3'], $this->broker);
    }

    /**
     * @return iterable<string, array{array<string, mixed>, int}>
     */
    public static function counts(): iterable
    {
        yield 'a first run' => [[], 1];
        yield 'laravel-queue-rabbitmq ran it twice' => [['laravel' => ['attempts' => 2]], 3];
        yield 'fpmq ran it twice (its next attempt is 3)' => [['x-fpmq-attempt' => 3], 3];
        yield 'both' => [['laravel' => ['attempts' => 2], 'x-fpmq-attempt' => 3], 5];
    }

    /**
     * @param array<string, mixed> $headers
     */
    #[DataProvider('counts')]
    public function testAttemptsCountEveryRunBefore(array $headers, int $want): void
    {
        $this->enqueue(new TestJob('c'), 9, $headers);
        $job = $this->app->make('queue')->connection('fake')->pop();
        self::assertInstanceOf(PoppedJob::class, $job);
        self::assertSame($want, $job->attempts());
        self::assertSame('fake', $job->getConnectionName());
        self::assertSame('jobs', $job->getQueue());
        self::assertSame(json_decode($job->getRawBody(), true)['uuid'], $job->getJobId());
    }
}
