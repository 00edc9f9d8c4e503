<?php

declare(strict_types=1);

namespace App\Handler;

use App\Message\Noop;

/** NoopHandler handles Noop by doing nothing. */
final class NoopHandler
{
    public function __invoke(Noop $noop): void
    {
    }
}
