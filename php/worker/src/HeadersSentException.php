<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * HeadersSentException means the script answered after its output had
 * started, when PHP can no longer set the status or a header: the answer
 * would be lost, so it throws instead (an uncaught exception is a failed
 * attempt for the daemon). Answer before printing anything.
 */
final class HeadersSentException extends \LogicException implements WorkerException
{
}
