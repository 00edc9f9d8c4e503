<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\Job as JobContract;
use Illuminate\Queue\Jobs\Job;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

/**
 * PoppedJob is a job that FpmqQueue::pop() took from RabbitMQ with
 * basic.get, for `php artisan queue:work` on an fpmq connection: the
 * message stays unacknowledged until the worker is done with it, and goes
 * back to the queue if the worker dies first.
 *
 *  - delete() acks it (Laravel deletes a job that succeeded or failed);
 *  - release($delay) publishes a copy through the queue's Publisher,
 *    $delay seconds later (fpmq's delay queues), with the runs so far in
 *    the `laravel` header table ({attempts: n}, as laravel-queue-rabbitmq
 *    counts them), and then acks the original;
 *  - attempts() is the runs before this one plus 1: the `laravel` header
 *    table's attempts, plus fpmq's count when the daemon retried the
 *    message before (x-fpmq-attempt, the number of its next attempt), so
 *    that a job moving between fpmq and queue:work keeps one count.
 */
final class PoppedJob extends Job implements JobContract
{
    /**
     * @param Container $container the application
     * @param AMQPMessage $message the message basic.get returned, not acknowledged
     * @param \Closure(string, string, int, array<string, AMQPTable>): void $republish publishes
     *        (body, queue, delay in seconds, AMQP headers), returning once the broker confirmed it
     * @param string $connectionName the queue connection (config/queue.php)
     * @param string $queue the queue it was taken from
     */
    public function __construct(
        Container $container,
        private readonly AMQPMessage $message,
        private readonly \Closure $republish,
        string $connectionName,
        string $queue,
    ) {
        $this->container = $container;
        $this->connectionName = $connectionName;
        $this->queue = $queue;
    }

    /**
     * getJobId returns the payload's uuid (its id for laravel-queue-rabbitmq's
     * payloads), else the message id; '' when there is none.
     */
    public function getJobId(): string
    {
        return Payload::id($this->payload())
            ?? ($this->message->has('message_id') ? (string) $this->message->get('message_id') : '');
    }

    /** getRawBody returns the payload as published. */
    public function getRawBody(): string
    {
        return $this->message->getBody();
    }

    /** attempts returns this run's number, 1 on the first: the runs before it (see the class) plus 1. */
    public function attempts(): int
    {
        $headers = $this->headers();
        $laravel = $headers['laravel'] ?? null;
        $earlier = is_array($laravel) && is_int($laravel['attempts'] ?? null) ? max(0, $laravel['attempts']) : 0;
        $fpmq = $headers['x-fpmq-attempt'] ?? null;
        return $earlier + (is_int($fpmq) && $fpmq > 1 ? $fpmq : 1);
    }

    /** delete acknowledges the message: the broker forgets it. */
    public function delete(): void
    {
        parent::delete();
        $this->message->ack();
    }

    /**
     * release publishes a copy to run again after $delay (seconds, a
     * DateInterval or a time), counting this run, and then acknowledges the
     * message. If the copy is not confirmed, the message is left
     * unacknowledged: it runs again when the worker's connection closes.
     *
     * @param \DateTimeInterface|\DateInterval|int $delay
     *
     * @throws \Fpmq\PublishException when the broker did not confirm the copy
     */
    public function release($delay = 0): void
    {
        parent::release($delay);
        ($this->republish)(
            $this->message->getBody(),
            $this->queue,
            $this->secondsUntil($delay),
            ['laravel' => new AMQPTable(['attempts' => $this->attempts()])],
        );
        $this->message->ack();
    }

    /** message returns the AMQP message, as basic.get returned it. */
    public function message(): AMQPMessage
    {
        return $this->message;
    }

    /**
     * headers returns the message's AMQP headers as PHP values (nested
     * tables as arrays), none when it has none.
     *
     * @return array<string, mixed>
     */
    private function headers(): array
    {
        if (!$this->message->has('application_headers')) {
            return [];
        }
        $table = $this->message->get('application_headers');
        return $table instanceof AMQPTable ? $table->getNativeData() : [];
    }
}
