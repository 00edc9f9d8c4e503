<?php

// Loads the package for its tests: composer's autoloader when `composer
// install` ran in the package, else php/autoload.php (Debian's phpunit and
// php-amqplib).

declare(strict_types=1);

$vendor = dirname(__DIR__) . '/vendor/autoload.php';
require_once is_file($vendor) ? $vendor : dirname(__DIR__, 2) . '/autoload.php';

if (!class_exists(\PhpAmqpLib\Message\AMQPMessage::class)) {
    fwrite(STDERR, "php-amqplib is missing: sudo ./docker/deps.sh --tests installs Debian's php-amqplib"
        . " (or run composer install in php/client)\n");
    exit(1);
}
