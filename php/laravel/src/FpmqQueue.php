<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Fpmq\Publisher;
use Illuminate\Contracts\Queue\Queue as QueueContract;
use Illuminate\Queue\Queue;
use PhpAmqpLib\Channel\AMQPChannel;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Message\AMQPMessage;

/**
 * FpmqQueue is the queue of an 'fpmq' connection: it publishes Laravel's
 * own payload, unchanged, to RabbitMQ, where an fpmq daemon consumes it and
 * runs it on php-fpm (see Runner).
 *
 * Each job is published with Fpmq\Publisher, persistent and confirmed by
 * the broker before push() returns: the message id is the payload's uuid
 * (the job's identity on every attempt), the AMQP type its displayName (the
 * job's name in the daemon's logs), the content type application/json. A
 * queue name (onQueue(), the connection's 'queue') is the AMQP queue of an
 * fpmq route; a delay goes through that route's delay queues. The queues
 * belong to the daemon, which declares them: this class declares none, and
 * a job for a queue no daemon declared throws Fpmq\ReturnedException.
 *
 * One broker connection serves every queue, opened at the first push or
 * size() and kept for the rest of the PHP request or command.
 */
final class FpmqQueue extends Queue implements QueueContract
{
    private ?AbstractConnection $connection = null;

    /** The channel pop() takes jobs on, unacknowledged ones with it. */
    private ?AMQPChannel $popChannel = null;

    /** @var array<string, Publisher> by queue name */
    private array $publishers = [];

    /**
     * @param \Closure(): AbstractConnection $connect opens the broker connection
     * @param string $default the queue a job goes to when it names none
     * @param int $delayMax the daemons' DELAY_MAX, in seconds
     * @param float $timeout seconds to wait for each publisher confirm
     * @param bool $dispatchAfterCommit Laravel's after_commit
     */
    public function __construct(
        private readonly \Closure $connect,
        private readonly string $default,
        private readonly int $delayMax,
        private readonly float $timeout,
        bool $dispatchAfterCommit = false,
    ) {
        if ($default === '') {
            throw new \InvalidArgumentException('fpmq: the queue connection\'s queue is empty');
        }
        $this->dispatchAfterCommit = $dispatchAfterCommit;
    }

    /**
     * size returns the number of jobs ready in the queue (its AMQP queue's
     * message count, by a passive declare): jobs waiting in delay or retry
     * queues and jobs running are not counted; 0 when the queue does not
     * exist.
     *
     * @param string|null $queue the queue, or the connection's default
     */
    public function size($queue = null): int
    {
        $channel = $this->connection()->channel();
        try {
            $declared = $channel->queue_declare($this->getQueue($queue), true); // true: passive
            return (int) ($declared[1] ?? 0);
        } catch (AMQPProtocolChannelException $e) {
            if ($e->amqp_reply_code === 404) {
                return 0;
            }
            throw $e;
        } finally {
            if ($channel->is_open()) {
                $channel->close();
            }
        }
    }

    /**
     * push publishes the job, and returns its message id (the payload's uuid).
     *
     * @param object|string $job
     * @param mixed $data
     * @param string|null $queue
     *
     * @throws \Fpmq\PublishException when the broker did not confirm the job
     */
    public function push($job, $data = '', $queue = null): mixed
    {
        return $this->enqueueUsing(
            $job,
            $this->createPayload($job, $this->getQueue($queue), $data),
            $queue,
            null,
            fn (string $payload, ?string $queue): string => $this->publish($payload, $queue, 0),
        );
    }

    /**
     * pushRaw publishes $payload as it is; $options['delay'] (seconds) delays it.
     *
     * @param string $payload
     * @param string|null $queue
     * @param array<string, mixed> $options
     *
     * @throws \Fpmq\PublishException when the broker did not confirm the job
     */
    public function pushRaw($payload, $queue = null, array $options = []): string
    {
        return $this->publish($payload, $queue, $this->secondsUntil($options['delay'] ?? 0));
    }

    /**
     * later publishes the job to run no sooner than $delay: seconds, a
     * DateInterval or a time (at most 168 h ahead).
     *
     * @param \DateTimeInterface|\DateInterval|int $delay
     * @param object|string $job
     * @param mixed $data
     * @param string|null $queue
     *
     * @throws \Fpmq\PublishException when the broker did not confirm the job
     */
    public function later($delay, $job, $data = '', $queue = null): mixed
    {
        return $this->enqueueUsing(
            $job,
            $this->createPayload($job, $this->getQueue($queue), $data),
            $queue,
            $delay,
            fn (string $payload, ?string $queue, $delay): string
                => $this->publish($payload, $queue, $this->secondsUntil($delay)),
        );
    }

    /**
     * pop takes the next ready job of the queue with basic.get, as
     * `php artisan queue:work` asks for it, and returns it unacknowledged
     * (a PoppedJob: delete() acks it, release() publishes a copy for later),
     * or null when the queue is empty or does not exist. It is the way to
     * drain a queue with queue:work, during a migration; fpmq's daemon
     * itself pushes each job to php-fpm and never pops.
     *
     * @param string|null $queue the queue, or the connection's default
     */
    public function pop($queue = null): ?PoppedJob
    {
        $queue = $this->getQueue($queue);
        $channel = $this->popChannel ??= $this->connection()->channel();
        try {
            $message = $channel->basic_get($queue); // no_ack false: acked by the job
        } catch (AMQPProtocolChannelException $e) {
            // The broker closed the channel.
            $this->popChannel = null;
            if ($e->amqp_reply_code === 404) {
                return null;
            }
            throw $e;
        }
        if (!$message instanceof AMQPMessage) {
            return null;
        }
        return new PoppedJob(
            $this->container,
            $message,
            function (string $body, string $queue, int $delay, array $headers): void {
                $this->publish($body, $queue, $delay, $headers);
            },
            $this->getConnectionName(),
            $queue,
        );
    }

    /** getQueue returns $queue, or the connection's default queue when it is null or ''. */
    public function getQueue(?string $queue): string
    {
        return ($queue === null || $queue === '') ? $this->default : $queue;
    }

    /** close closes the broker connection, if open; a later push opens another. */
    public function close(): void
    {
        $this->publishers = [];
        $this->popChannel = null;
        $connection = $this->connection;
        $this->connection = null;
        try {
            $connection?->close();
        } catch (\Throwable) {
            // A connection that is gone already is closed.
        }
    }

    /**
     * publish sends $payload to $queue, $delay seconds from now, with the
     * AMQP headers $headers, and returns its message id.
     *
     * @param array<string, string|int|float|bool|\PhpAmqpLib\Wire\AMQPTable> $headers
     */
    private function publish(string $payload, ?string $queue, int $delay, array $headers = []): string
    {
        $decoded = json_decode($payload, true);
        $uuid = is_array($decoded) ? ($decoded['uuid'] ?? null) : null;
        $name = is_array($decoded) ? ($decoded['displayName'] ?? '') : '';
        $queue = $this->getQueue($queue);
        $publisher = $this->publishers[$queue] ??= new Publisher(
            $this->connection(),
            $queue,
            $this->delayMax,
            $this->timeout,
        );
        return $publisher->publishRaw(
            is_string($name) ? substr($name, 0, 255) : '',
            $payload,
            'application/json',
            $headers,
            $delay,
            0,
            (is_string($uuid) && $uuid !== '' && strlen($uuid) <= 255) ? $uuid : null,
        );
    }

    private function connection(): AbstractConnection
    {
        if ($this->connection === null || !$this->connection->isConnected()) {
            $this->publishers = [];
            $this->popChannel = null;
            $this->connection = ($this->connect)();
        }
        return $this->connection;
    }
}
