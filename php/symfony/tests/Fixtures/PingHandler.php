<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests\Fixtures;

use Symfony\Component\Messenger\Exception\RecoverableMessageHandlingException;
use Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException;

/** PingHandler records each Ping it handles, then does what the Ping's behaviour says. */
final class PingHandler
{
    /** @var list<string> the ids handled, in order, by every instance */
    public static array $handled = [];

    public function __invoke(Ping $ping): void
    {
        self::$handled[] = $ping->id;
        match ($ping->behavior) {
            'fail' => throw new \RuntimeException("boom {$ping->id}"),
            'unrecoverable' => throw new UnrecoverableMessageHandlingException("gone {$ping->id}"),
            'recoverable' => throw new RecoverableMessageHandlingException("later {$ping->id}"),
            default => null,
        };
    }
}
