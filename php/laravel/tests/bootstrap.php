<?php

// Loads the package for its tests: composer's autoloader when `composer
// install` ran in the package; else Debian's Laravel (php-laravel-framework,
// /usr/share/php), fpmq's client and worker libraries (php/autoload.php) and
// this package's own PSR-4 prefixes.

declare(strict_types=1);

$vendor = dirname(__DIR__) . '/vendor/autoload.php';
if (is_file($vendor)) {
    require_once $vendor;
    return;
}
require_once '/usr/share/php/Illuminate/autoload.php';
require_once dirname(__DIR__, 2) . '/autoload.php';
spl_autoload_register(static function (string $class): void {
    $prefixes = ['Fpmq\\Laravel\\Tests\\' => __DIR__ . '/', 'Fpmq\\Laravel\\' => dirname(__DIR__) . '/src/'];
    foreach ($prefixes as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
