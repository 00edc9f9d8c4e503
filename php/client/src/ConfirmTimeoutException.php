<?php

declare(strict_types=1);

namespace Fpmq;

/**
 * ConfirmTimeoutException means the broker neither confirmed nor refused
 * the job within the publisher's timeout. The job may or may not be
 * queued: publishing it again with the same message id lets the worker
 * deduplicate ($_SERVER['HTTP_X_MESSAGE_ID']).
 */
final class ConfirmTimeoutException extends PublishException
{
}
