<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Transport\Receiver\ReceiverInterface;

/**
 * OneMessageReceiver hands Symfony's Worker the one envelope of an fpmq job
 * and records what the Worker settled: ack (handled, or failed and to be
 * retried) or reject (failed for good). The broker's delivery itself is the
 * daemon's to settle, from the answer the Consumer gives.
 */
final class OneMessageReceiver implements ReceiverInterface
{
    private bool $given = false;

    private ?bool $acked = null;

    public function __construct(private readonly Envelope $envelope)
    {
    }

    /**
     * get returns the envelope on the first call, and nothing after.
     *
     * @return list<Envelope>
     */
    public function get(): iterable
    {
        if ($this->given) {
            return [];
        }
        $this->given = true;
        return [$this->envelope];
    }

    public function ack(Envelope $envelope): void
    {
        $this->acked = true;
    }

    public function reject(Envelope $envelope): void
    {
        $this->acked = false;
    }

    /** settled returns true when the Worker acked the envelope, false when it rejected it, null when it did neither. */
    public function settled(): ?bool
    {
        return $this->acked;
    }
}
