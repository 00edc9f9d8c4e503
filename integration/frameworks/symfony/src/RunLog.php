<?php

declare(strict_types=1);

namespace App;

/**
 * RunLog appends one JSON object per line to /tmp/symfony-app/runs.log,
 * which the integration test reads: each run of a handler and each Worker
 * event, with the time in Unix seconds.
 */
final class RunLog
{
    public const FILE = APP_STATE_DIR . '/runs.log';

    /** @param array<string, mixed> $record */
    public static function write(array $record): void
    {
        $record['at'] = microtime(true);
        $line = json_encode($record, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES) . "\n";
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
