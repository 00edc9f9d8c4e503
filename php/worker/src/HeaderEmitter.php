<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * HeaderEmitter sets the response's status and headers, which is how a
 * worker script answers the daemon. PhpHeaderEmitter is PHP's own
 * http_response_code() and header(); RecordingHeaderEmitter keeps them in
 * memory, for tests.
 */
interface HeaderEmitter
{
    /**
     * status sets the HTTP status of the response, 100 to 599.
     *
     * @throws HeadersSentException when output has started already
     */
    public function status(int $code): void;

    /**
     * header sets the response header $name to $value, replacing any
     * earlier value. $value holds no control characters.
     *
     * @throws HeadersSentException when output has started already
     */
    public function header(string $name, string $value): void;

    /**
     * remove removes the response header $name, if it was set.
     *
     * @throws HeadersSentException when output has started already
     */
    public function remove(string $name): void;
}
