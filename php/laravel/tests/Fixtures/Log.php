<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests\Fixtures;

/** Log keeps what the fixture jobs did, for the tests to read. */
final class Log
{
    /** @var list<string> */
    public static array $entries = [];

    public static function add(string $entry): void
    {
        self::$entries[] = $entry;
    }
}
