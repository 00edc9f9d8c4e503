<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

/**
 * MissingJobClassException fails a job whose class the application does not
 * have: a deploy removed or renamed it, or the producer runs newer code.
 * Retrying cannot help the code that runs now, so the job fails at once
 * (failed-jobs store, dead-letter queue) instead of being retried.
 */
final class MissingJobClassException extends \RuntimeException
{
}
