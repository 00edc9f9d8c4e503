<?php

declare(strict_types=1);

namespace App\Stamp;

use Symfony\Component\Messenger\Stamp\StampInterface;

/** TraceStamp is the application's own stamp, which must arrive intact through either serializer. */
final class TraceStamp implements StampInterface
{
    /**
     * @param array<string, string> $baggage
     */
    public function __construct(
        public readonly string $traceId,
        public readonly array $baggage = [],
    ) {
    }
}
