<?php

declare(strict_types=1);

namespace Fpmq;

/**
 * NackedException means the broker refused the job (basic.nack): for
 * example a queue at its length limit with overflow reject-publish, or an
 * internal error of the broker. The job is not queued.
 */
final class NackedException extends PublishException
{
}
