<?php

// Loads fpmq's PHP packages without composer, as PSR-4 maps them:
// Fpmq\Worker\ from worker/src (the worker library) and Fpmq\ from
// client/src (the publishing library). The client's php-amqplib comes from
// client/vendor/ when composer installed it there, or else from Debian's
// php-amqplib package (/usr/share/php/PhpAmqpLib), which the project's
// Debian php-fpm image has; without either, only the worker library works.
// An application that uses composer needs none of this: a path or VCS
// repository for each package, then vendor/autoload.php.

declare(strict_types=1);

if (is_file(__DIR__ . '/client/vendor/autoload.php')) {
    require_once __DIR__ . '/client/vendor/autoload.php';
} elseif (is_file('/usr/share/php/PhpAmqpLib/autoload.php')) {
    require_once '/usr/share/php/PhpAmqpLib/autoload.php';
}

spl_autoload_register(static function (string $class): void {
    // The longer prefix first: Fpmq\Worker\ lies inside Fpmq\.
    foreach (['Fpmq\\Worker\\' => '/worker/src/', 'Fpmq\\' => '/client/src/'] as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = __DIR__ . $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
