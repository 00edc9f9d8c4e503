<?php

declare(strict_types=1);

namespace App;

/**
 * Runs appends what the test jobs do to /tmp/laravel/runs.log, one JSON
 * object a line, for the integration test to read: {"kind": "run" |
 * "failed" | "event", "tag", "id" (the payload's uuid), "attempt", "at"
 * (Unix seconds, microseconds), and the error or the event's name}.
 */
final class Runs
{
    public const FILE = '/tmp/laravel/runs.log';

    /**
     * @param array<string, mixed> $fields
     */
    public static function record(string $kind, array $fields): void
    {
        $line = json_encode(['kind' => $kind, 'at' => microtime(true)] + $fields, JSON_THROW_ON_ERROR) . "\n";
        if (file_put_contents(self::FILE, $line, FILE_APPEND | LOCK_EX) === false) {
            throw new \RuntimeException('cannot write ' . self::FILE);
        }
    }

    /**
     * preloaded says whether php-fpm preloaded every one of $classes at its
     * start (opcache.preload): false outside php-fpm or without OPcache.
     */
    public static function preloaded(string ...$classes): bool
    {
        $status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
        $preloaded = is_array($status) ? ($status['preload_statistics']['classes'] ?? []) : [];
        return $preloaded !== [] && array_diff($classes, $preloaded) === [];
    }
}
