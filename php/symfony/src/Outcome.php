<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Fpmq\Worker\Job;
use Symfony\Component\Messenger\Exception\WrappedExceptionsInterface;

/**
 * Outcome is what became of one message in the Consumer, and the answer it
 * gives the fpmq daemon (answer()):
 *
 * - handled: the Worker acked it. Done (200): acked.
 * - retry: it failed and the transport's retry strategy retries it.
 *   Fpmq-Retry-In: the strategy's delay in whole seconds (rounded up), and
 *   Fpmq-Max-Attempts: at least this attempt + 1. Without a retry strategy
 *   of the application's: a plain failure (500), fpmq's backoff and
 *   MAX_ATTEMPTS.
 * - failed: it failed for good (the strategy gives up, or the exception is
 *   unrecoverable). Fpmq-Fail: the exception's class and message.
 * - undecodable: the transport's serializer cannot decode it. Fpmq-Fail:
 *   what was expected, and why it failed.
 * - unsettled: a listener kept the Worker from handling it. A plain
 *   failure (500): run again after fpmq's backoff.
 */
final class Outcome
{
    public const HANDLED = 'handled';
    public const RETRY = 'retry';
    public const FAILED = 'failed';
    public const UNDECODABLE = 'undecodable';
    public const UNSETTLED = 'unsettled';

    /**
     * @param string $kind one of the constants
     * @param int|null $delayMs RETRY: the retry strategy's wait in milliseconds, or null for fpmq's own
     * @param string $reason why, for the dead-letter queue and logs; '' when handled
     */
    private function __construct(
        public readonly string $kind,
        public readonly ?int $delayMs,
        public readonly string $reason,
        public readonly ?\Throwable $failure,
    ) {
    }

    public static function handled(): self
    {
        return new self(self::HANDLED, null, '', null);
    }

    /**
     * retry is a failure to run again: after $delayMs milliseconds as the
     * retry strategy says, or after fpmq's own backoff when null.
     */
    public static function retry(\Throwable $failure, ?int $delayMs): self
    {
        return new self(self::RETRY, $delayMs === null ? null : max(0, $delayMs), self::describe($failure), $failure);
    }

    public static function failed(\Throwable $failure): self
    {
        return new self(self::FAILED, null, self::describe($failure), $failure);
    }

    public static function undecodable(string $reason, \Throwable $failure): self
    {
        return new self(self::UNDECODABLE, null, $reason, $failure);
    }

    public static function unsettled(): self
    {
        return new self(
            self::UNSETTLED,
            null,
            'a WorkerMessageReceivedEvent listener kept Symfony\'s Worker from handling the message',
            null,
        );
    }

    /**
     * retrySeconds returns the wait Fpmq-Retry-In asks for: the strategy's
     * milliseconds in whole seconds, rounded up (1 ms waits 1 s); null when
     * fpmq's backoff applies.
     */
    public function retrySeconds(): ?int
    {
        return $this->delayMs === null ? null : intdiv($this->delayMs + 999, 1000);
    }

    /**
     * answer gives the daemon this outcome's answer through $job (see the
     * class's table). A retry that would need more than Job::MAX_ATTEMPTS_LIMIT
     * attempts fails instead, as the daemon could not grant it.
     *
     * @throws \Fpmq\Worker\InvalidParamException when the job's attempt params are malformed
     * @throws \Fpmq\Worker\HeadersSentException when output has started already
     */
    public function answer(Job $job): void
    {
        switch ($this->kind) {
            case self::HANDLED:
                $job->done();
                return;
            case self::FAILED:
            case self::UNDECODABLE:
                $job->fail($this->reason);
                return;
            case self::RETRY:
                $seconds = $this->retrySeconds();
                if ($seconds === null) {
                    $job->retry();
                    return;
                }
                $next = $job->attempt() + 1;
                if ($next > Job::MAX_ATTEMPTS_LIMIT) {
                    $job->fail('Symfony asked for attempt ' . $next . ', past the ' . Job::MAX_ATTEMPTS_LIMIT
                        . ' attempts fpmq gives a job: ' . $this->reason);
                    return;
                }
                // Symfony's strategy decides each retry; the route's
                // MAX_ATTEMPTS still bounds the failures Symfony never sees
                // (fatal errors, timeouts), so the limit never shrinks.
                $limit = max($next, min($job->maxAttempts() ?? 0, Job::MAX_ATTEMPTS_LIMIT));
                $job->withMaxAttempts($limit)->runAgainIn($seconds);
                return;
            default:
                $job->retry();
        }
    }

    /**
     * describe returns "Class: message" of $failure; for an exception that
     * wraps others (HandlerFailedException: one per failed handler), those
     * of the exceptions it wraps, joined with "; ".
     */
    public static function describe(\Throwable $failure): string
    {
        if ($failure instanceof WrappedExceptionsInterface) {
            $wrapped = $failure->getWrappedExceptions();
            if ($wrapped !== []) {
                return implode('; ', array_map(self::describe(...), array_values($wrapped)));
            }
        }
        return $failure::class . ': ' . $failure->getMessage();
    }
}
