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
}
