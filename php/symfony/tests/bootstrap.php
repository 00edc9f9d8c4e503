<?php

// Loads the package for its tests: composer's autoloader when `composer
// install` ran in the package; else Debian's Symfony packages under
// /usr/share/php (the php-frameworks image), Composer's runtime API that
// FrameworkBundle needs (tests/Fixtures/composer-runtime.php, as an
// application installed with Composer has it), and php/symfony/autoload.php.

declare(strict_types=1);

$vendor = dirname(__DIR__) . '/vendor/autoload.php';
if (is_file($vendor)) {
    require_once $vendor;
} else {
    foreach (
        [
            'Bundle/FrameworkBundle', 'Component/Messenger', 'Component/Serializer',
            'Component/PropertyAccess', 'Component/PropertyInfo', 'Component/Messenger/Bridge/Amqp',
        ] as $package
    ) {
        require_once "/usr/share/php/Symfony/{$package}/autoload.php";
    }
    require_once __DIR__ . '/Fixtures/composer-runtime.php';
    require_once dirname(__DIR__) . '/autoload.php';
    spl_autoload_register(static function (string $class): void {
        $prefix = 'Fpmq\\Symfony\\Tests\\';
        if (str_starts_with($class, $prefix)) {
            $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}
