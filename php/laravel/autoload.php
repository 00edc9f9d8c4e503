<?php

// Loads the Laravel bridge without composer, as PSR-4 maps it
// (Fpmq\Laravel\ from src/), and fpmq's worker and client libraries through
// php/autoload.php beside it. Laravel itself is the application's to load:
// composer's vendor/autoload.php, or Debian's php-laravel-framework
// (/usr/share/php/Illuminate/autoload.php; see README.md). An application
// that uses composer needs none of this.

declare(strict_types=1);

require_once dirname(__DIR__) . '/autoload.php';

spl_autoload_register(static function (string $class): void {
    $prefix = 'Fpmq\\Laravel\\';
    if (!str_starts_with($class, $prefix)) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
