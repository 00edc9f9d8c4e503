<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Symfony\Component\Messenger\Stamp\NonSendableStampInterface;

/**
 * FpmqReceivedStamp marks an envelope that fpmq handed to the application,
 * beside Messenger's ReceivedStamp: the job's identity (the same on every
 * attempt: deduplicate on it, since delivery is at least once), which
 * attempt this is, and how many it gets. It is never sent to a transport.
 */
final class FpmqReceivedStamp implements NonSendableStampInterface
{
    /**
     * @param string $jobId the job's identity, HTTP_X_MESSAGE_ID
     * @param int $attempt 1 on the first attempt
     * @param int|null $maxAttempts the attempts the daemon gives the job, null when it does not say
     * @param string $queue the queue the job came from, '' when the daemon does not say
     */
    public function __construct(
        public readonly string $jobId,
        public readonly int $attempt,
        public readonly ?int $maxAttempts,
        public readonly string $queue,
    ) {
    }
}
