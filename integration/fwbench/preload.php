<?php

// opcache.preload of the framework benchmark's "preload" pool: compiles
// every file that record.php saw a request include (the framework, the
// bridge, the application), so that each child starts with their classes
// linked. Files of caches that a restart removed are skipped.

declare(strict_types=1);

foreach (glob(__DIR__ . '/included-*.txt') ?: [] as $list) {
    foreach (file($list, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $file) {
        if (!str_starts_with($file, __DIR__ . '/') && is_file($file)) {
            opcache_compile_file($file);
        }
    }
}
