<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests\Fixtures;

/**
 * Ping is the tests' message; PingHandler does what $behavior says: "ok",
 * "fail" (a RuntimeException), "unrecoverable", "recoverable".
 */
final class Ping
{
    public function __construct(
        public readonly string $id,
        public readonly string $behavior = 'ok',
    ) {
    }
}
