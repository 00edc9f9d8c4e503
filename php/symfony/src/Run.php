<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Symfony\Component\Messenger\Envelope;

/**
 * Run is the one message fpmq hands this process now: which transport it
 * came from, and the retry Symfony asked for. It is a service shared by the
 * Consumer and the sender locators that FpmqPass puts in front of
 * Messenger's retry and failure listeners, so that those listeners keep
 * their behaviour for every other worker (a messenger:consume of another
 * transport in the same application) and change it only for the transport
 * that fpmq runs: a retry is captured here instead of being published
 * again, and no failure transport receives the message.
 */
final class Run
{
    private ?string $transport = null;

    private ?Envelope $retry = null;

    /**
     * start marks $transport as run by fpmq until finish() is called, and
     * forgets any retry of an earlier run.
     *
     * @throws \LogicException when a run is in progress already
     */
    public function start(string $transport): void
    {
        if ($this->transport !== null) {
            throw new \LogicException("fpmq: a run of transport \"{$this->transport}\" is in progress already");
        }
        $this->transport = $transport;
        $this->retry = null;
    }

    /** finish ends the run; the retry it captured stays readable. */
    public function finish(): void
    {
        $this->transport = null;
    }

    /** runs says whether fpmq runs a message of $transport now. */
    public function runs(string $transport): bool
    {
        return $this->transport === $transport;
    }

    /**
     * captureRetry keeps the envelope Symfony's retry listener would have
     * sent back to the transport: its DelayStamp holds the retry strategy's
     * wait.
     */
    public function captureRetry(Envelope $envelope): void
    {
        $this->retry = $envelope;
    }

    /** retry returns the envelope captureRetry kept during the last run, or null when Symfony asked for none. */
    public function retry(): ?Envelope
    {
        return $this->retry;
    }
}
