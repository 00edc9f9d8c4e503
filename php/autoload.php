<?php
// Loads the fpmq library without composer: its own classes (PSR-4, Fpmq\ in
// src/), and php-amqplib from vendor/ when composer installed it there, or
// else from Debian's php-amqplib package (/usr/share/php/PhpAmqpLib), which
// the project's Debian php-fpm image has. An application that uses composer
// needs none of this: `composer require php-amqplib/php-amqplib` and a path
// or VCS repository for this package, then vendor/autoload.php.

declare(strict_types=1);

if (is_file(__DIR__ . '/vendor/autoload.php')) {
    require_once __DIR__ . '/vendor/autoload.php';
} elseif (is_file('/usr/share/php/PhpAmqpLib/autoload.php')) {
    require_once '/usr/share/php/PhpAmqpLib/autoload.php';
}

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Fpmq\\')) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 5)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
