<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * InvalidParamException means a CGI param the daemon sets is missing or is
 * not what the worker contract says it is: for example HTTP_X_ATTEMPT that
 * is no whole number, or HTTP_X_FPMQ_MESSAGE that is no JSON object.
 * getParam() names the param; the message says what was expected. The
 * request was most likely not sent by an fpmq daemon that speaks this
 * contract.
 */
final class InvalidParamException extends \UnexpectedValueException implements WorkerException
{
    public function __construct(private readonly string $param, string $message, ?\Throwable $previous = null)
    {
        parent::__construct("fpmq: {$param}: {$message}", 0, $previous);
    }

    /** getParam returns the name of the param, such as HTTP_X_FPMQ_MESSAGE. */
    public function getParam(): string
    {
        return $this->param;
    }
}
