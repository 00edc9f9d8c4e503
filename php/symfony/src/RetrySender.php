<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Transport\Sender\SenderInterface;

/**
 * RetrySender is the sender Messenger's retry listener gets for the
 * transport fpmq runs: it publishes nothing and keeps the retry envelope in
 * the Run, where the Consumer reads its delay. The fpmq daemon runs the
 * original message again instead, from its own retry queue.
 */
final class RetrySender implements SenderInterface
{
    public function __construct(private readonly Run $run)
    {
    }

    public function send(Envelope $envelope): Envelope
    {
        $this->run->captureRetry($envelope);
        return $envelope;
    }
}
