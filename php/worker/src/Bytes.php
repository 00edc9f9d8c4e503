<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Bytes is an AMQP byte array header value (field type x), which JSON has
 * no type for: HTTP_X_FPMQ_MESSAGE carries it as {"bytes": "<base64>"}.
 * $bytes holds the bytes themselves, decoded.
 */
final class Bytes implements \JsonSerializable
{
    public function __construct(public readonly string $bytes)
    {
    }

    /** @return array{bytes: string} the value as HTTP_X_FPMQ_MESSAGE writes it */
    public function jsonSerialize(): array
    {
        return ['bytes' => base64_encode($this->bytes)];
    }
}
