<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests\Fixtures;

use Symfony\Component\Messenger\Stamp\StampInterface;

/** TagStamp is an application's own stamp, with nested data. */
final class TagStamp implements StampInterface
{
    /**
     * @param array<string, mixed> $data
     */
    public function __construct(
        public readonly string $name,
        public readonly array $data = [],
    ) {
    }
}
