<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Fpmq\Worker\Job as WorkerJob;
use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\Job as JobContract;
use Illuminate\Queue\Jobs\Job;

/**
 * FpmqJob is the Laravel queue job of one fpmq run: the payload the daemon
 * handed to php-fpm, with fpmq's identity and count of attempts. Laravel's
 * worker runs it (Runner); what it did to the job (deleted, released with a
 * delay, failed with an exception) becomes the answer to the daemon.
 *
 * Attempts: fpmq counts them (HTTP_X_ATTEMPT, 1 on the first run), and a
 * message published by laravel-queue-rabbitmq carries the runs it had
 * before in its `laravel` header table ({attempts: n}), which fpmq's copies
 * keep as published: attempts() is the sum, so that $tries counts every run.
 */
final class FpmqJob extends Job implements JobContract
{
    /** @var int|null the delay of release(), in seconds; null when not released */
    private ?int $releaseDelay = null;

    private ?\Throwable $failure = null;

    /**
     * @param Container $container the application
     * @param WorkerJob $run the fpmq run: its id and attempt
     * @param string $rawBody the payload, as published
     * @param string $connectionName the queue connection (config/queue.php) the job belongs to
     * @param string $queue the queue it was consumed from
     * @param int $earlierAttempts the runs before fpmq's first (laravel-queue-rabbitmq's count)
     */
    public function __construct(
        Container $container,
        private readonly WorkerJob $run,
        private readonly string $rawBody,
        string $connectionName,
        string $queue,
        private readonly int $earlierAttempts = 0,
    ) {
        $this->container = $container;
        $this->connectionName = $connectionName;
        $this->queue = $queue;
    }

    /**
     * getJobId returns the payload's uuid (its id for laravel-queue-rabbitmq's
     * payloads without one), else fpmq's identity of the message: the same
     * on every attempt.
     */
    public function getJobId(): string
    {
        return Payload::id($this->payload()) ?? $this->run->id();
    }

    /** getRawBody returns the payload as published. */
    public function getRawBody(): string
    {
        return $this->rawBody;
    }

    /** attempts returns this run's number, 1 on the first: fpmq's count plus the runs before it. */
    public function attempts(): int
    {
        return $this->run->attempt() + $this->earlierAttempts;
    }

    /** earlierAttempts returns the runs the job had before fpmq's first. */
    public function earlierAttempts(): int
    {
        return $this->earlierAttempts;
    }

    /**
     * release marks the job to run again after $delay: seconds, a
     * DateInterval or a time. The Runner answers the daemon with it.
     *
     * @param \DateTimeInterface|\DateInterval|int $delay
     */
    public function release($delay = 0): void
    {
        parent::release($delay);
        $this->releaseDelay = $this->secondsUntil($delay);
    }

    /** releaseDelay returns the seconds release() asked for, or null when the job was not released. */
    public function releaseDelay(): ?int
    {
        return $this->isReleased() ? $this->releaseDelay : null;
    }

    /**
     * fail marks the job failed, calls its failed() method and fires
     * JobFailed, as Laravel's jobs do, keeping $e for the answer.
     *
     * @param \Throwable|null $e
     */
    public function fail($e = null): void
    {
        $this->failure ??= $e;
        parent::fail($e);
    }

    /** failure returns the exception the job failed with, null when none was given. */
    public function failure(): ?\Throwable
    {
        return $this->failure;
    }
}
