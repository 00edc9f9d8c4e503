<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * PhpHeaderEmitter answers with PHP's http_response_code(), header() and
 * header_remove(): under php-fpm they become the CGI response's Status and
 * headers that the daemon reads. Where PHP would only warn that output has
 * started and drop the answer, it throws a HeadersSentException.
 */
final class PhpHeaderEmitter implements HeaderEmitter
{
    public function status(int $code): void
    {
        $this->checkNotSent();
        http_response_code($code);
    }

    public function header(string $name, string $value): void
    {
        $this->checkNotSent();
        header("{$name}: {$value}", true);
    }

    public function remove(string $name): void
    {
        $this->checkNotSent();
        header_remove($name);
    }

    /** @throws HeadersSentException */
    private function checkNotSent(): void
    {
        if (headers_sent($file, $line)) {
            throw new HeadersSentException(
                "fpmq: cannot answer the daemon: output started at {$file}:{$line}, so PHP sent the headers already"
            );
        }
    }
}
