<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * WorkerException is what every exception of the worker library
 * implements, so that a script can catch them all in one clause. Bad
 * arguments to an answer throw \InvalidArgumentException instead: they are
 * bugs in the script, not facts about the job.
 */
interface WorkerException extends \Throwable
{
}
