<?php

// Stands in for Composer's vendor/autoload.php in this test application,
// which has no Composer registry to install from: the framework from
// Debian's packages (/usr/share/php), fpmq's client and worker libraries
// from the image's /app (php/ of the repository), the bridge fpmq/laravel
// from /app/laravel/src and the application's App\ from app/ (PSR-4, as
// composer.json would map them).

declare(strict_types=1);

require_once '/usr/share/php/Illuminate/autoload.php';
require_once '/app/autoload.php';

spl_autoload_register(static function (string $class): void {
    foreach (['Fpmq\\Laravel\\' => '/app/laravel/src/', 'App\\' => dirname(__DIR__) . '/app/'] as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
