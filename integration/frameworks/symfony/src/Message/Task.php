<?php

declare(strict_types=1);

namespace App\Message;

/**
 * Task is the test message. Its behaviour says what its handler does:
 * "ok" succeeds; "flaky" throws until its retry count reaches $failures;
 * "recoverable" throws RecoverableMessageHandlingException likewise;
 * "unrecoverable" throws UnrecoverableMessageHandlingException.
 */
final class Task
{
    /**
     * @param float $dispatchedAt when it was dispatched, Unix seconds
     */
    public function __construct(
        public readonly string $id,
        public readonly string $behavior = 'ok',
        public readonly int $failures = 0,
        public readonly float $dispatchedAt = 0.0,
    ) {
    }
}
