<?php

// Creates the test application, as a Laravel 10 skeleton's bootstrap/app.php
// does, with Laravel's own console kernel and exception handler. The image
// is read-only: what Laravel writes (package manifest, logs, cache, the
// sqlite database) goes to /tmp/laravel, the php-fpm container's tmpfs,
// shared by the pool's children and the CLI, and so does .env (the broker's
// URL, written by the test, since the pool passes no environment).

declare(strict_types=1);

$var = '/tmp/laravel';
foreach (["{$var}/bootstrap/cache", "{$var}/storage/logs", "{$var}/storage/framework/cache/data"] as $dir) {
    if (!is_dir($dir) && !@mkdir($dir, 0777, true) && !is_dir($dir)) {
        throw new RuntimeException("cannot create {$dir}");
    }
}

$app = new Illuminate\Foundation\Application(dirname(__DIR__));
$app->useBootstrapPath("{$var}/bootstrap");
$app->useStoragePath("{$var}/storage");
$app->useEnvironmentPath($var);

$app->singleton(Illuminate\Contracts\Console\Kernel::class, Illuminate\Foundation\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, Illuminate\Foundation\Exceptions\Handler::class);

return $app;
