<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * MessageOmittedException means the daemon left HTTP_X_FPMQ_MESSAGE out
 * because it was larger than one FastCGI param may be (64 KiB), as
 * HTTP_X_FPMQ_OMITTED_HEADERS says: the message's properties and headers
 * cannot be read losslessly. The scalar headers may still be in
 * HTTP_X_HEADER_* (Job::param) and the job's identity, attempt and body
 * are unaffected.
 */
final class MessageOmittedException extends \RuntimeException implements WorkerException
{
}
