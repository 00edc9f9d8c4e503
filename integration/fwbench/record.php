<?php

// Prepended to every request of the pool (auto_prepend_file) in the
// framework benchmark's recording run: at the end of each request it writes
// the files the request included, one a line, to included-<md5 of the
// script>.txt beside it, which preload.php reads. The last request of each
// script wins: a request of a warm pool, not the first, that built caches.

declare(strict_types=1);

if (PHP_SAPI === 'fpm-fcgi') {
    register_shutdown_function(static function (): void {
        $list = __DIR__ . '/included-' . md5((string) ($_SERVER['SCRIPT_FILENAME'] ?? '')) . '.txt';
        file_put_contents($list, implode("\n", get_included_files()) . "\n", LOCK_EX);
    });
}
