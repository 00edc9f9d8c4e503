<?php

declare(strict_types=1);

namespace Fpmq;

/**
 * PublishException means a job may not have reached its queue: the broker
 * did not confirm it. Its subclasses say why when the broker said so; this
 * class itself covers a connection lost or a channel the broker closed
 * (a permission refused, for example). getMessageId() names the job, so
 * that it can be published again under the same id.
 */
class PublishException extends \RuntimeException
{
    public function __construct(string $message, private readonly string $messageId, ?\Throwable $previous = null)
    {
        parent::__construct($message, 0, $previous);
    }

    /** The message id the job was published with. */
    public function getMessageId(): string
    {
        return $this->messageId;
    }
}
