<?php

declare(strict_types=1);

namespace Fpmq;

/**
 * ReturnedException means no queue took the job (basic.return of a
 * mandatory message): the queue, or the delay queue it was sent to, does
 * not exist. The daemon declares them all: start it first. The job is not
 * queued.
 */
final class ReturnedException extends PublishException
{
    public function __construct(
        string $message,
        string $messageId,
        private readonly int $replyCode,
        private readonly string $routingKey,
    ) {
        parent::__construct($message, $messageId);
    }

    /** The broker's reply code, 312 (NO_ROUTE) for a missing queue. */
    public function getReplyCode(): int
    {
        return $this->replyCode;
    }

    /** The queue the job was published to: the job queue or a delay queue. */
    public function getRoutingKey(): string
    {
        return $this->routingKey;
    }
}
