<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests\Fixtures;

use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Middleware\MiddlewareInterface;
use Symfony\Component\Messenger\Middleware\StackInterface;

/** CapturingMiddleware keeps the envelope it is handed and ends the stack. */
final class CapturingMiddleware implements MiddlewareInterface
{
    public ?Envelope $envelope = null;

    public function handle(Envelope $envelope, StackInterface $stack): Envelope
    {
        $this->envelope = $envelope;
        return $envelope;
    }
}
