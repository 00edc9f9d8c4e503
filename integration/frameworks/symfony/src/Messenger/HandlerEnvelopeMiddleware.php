<?php

declare(strict_types=1);

namespace App\Messenger;

use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Middleware\MiddlewareInterface;
use Symfony\Component\Messenger\Middleware\StackInterface;
use Symfony\Component\Messenger\Stamp\HandlerArgumentsStamp;

/**
 * HandlerEnvelopeMiddleware hands the envelope to the handlers as their
 * second argument (HandlerArgumentsStamp), so that they see the stamps the
 * worker added: ReceivedStamp, ConsumedByWorkerStamp, RedeliveryStamp.
 */
final class HandlerEnvelopeMiddleware implements MiddlewareInterface
{
    public function handle(Envelope $envelope, StackInterface $stack): Envelope
    {
        return $stack->next()->handle($envelope->with(new HandlerArgumentsStamp([$envelope])), $stack);
    }
}
