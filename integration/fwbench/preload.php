<?php

// opcache.preload of the framework benchmark's "preload" pool: compiles
// every file that record.php saw a request include (the framework, the
// bridge, the application), so that each child starts with their classes
// linked. Files under /tmp are the applications' runtime caches, which
// they write and check themselves: skipped. Under this preload Symfony's
// kernel still builds its container again on every request and fails (the
// bench does not run Symfony with it; see variants.go).

declare(strict_types=1);

foreach (glob(__DIR__ . '/included-*.txt') ?: [] as $list) {
    foreach (file($list, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $file) {
        if (!str_starts_with($file, __DIR__ . '/') && !str_starts_with($file, '/tmp/') && is_file($file)) {
            opcache_compile_file($file);
        }
    }
}
