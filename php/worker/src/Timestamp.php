<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Timestamp is an AMQP timestamp header value (field type T), which JSON has
 * no type for: HTTP_X_FPMQ_MESSAGE carries it as {"timestamp": <unix seconds>}.
 * $seconds is the Unix time in whole seconds, AMQP's resolution.
 */
final class Timestamp implements \JsonSerializable
{
    public function __construct(public readonly int $seconds)
    {
    }

    /** toDateTime returns the instant, in UTC. */
    public function toDateTime(): \DateTimeImmutable
    {
        return new \DateTimeImmutable('@' . $this->seconds);
    }

    /** @return array{timestamp: int} the value as HTTP_X_FPMQ_MESSAGE writes it */
    public function jsonSerialize(): array
    {
        return ['timestamp' => $this->seconds];
    }
}
