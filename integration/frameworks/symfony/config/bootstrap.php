<?php

// Boots the test application's environment, for the pool scripts in
// public/ and the command-line scripts in bin/: the class loaders (in the
// image, Composer's, built from composer.json; elsewhere Debian's own for
// its Symfony packages under /usr/share/php, with Composer's runtime API
// that FrameworkBundle needs, fpmq's Symfony bridge and worker library
// under /app, the application's App\ from src/) and its settings.
//
// php-fpm clears the environment (clear_env), so the settings come from a
// file, as a .env file would give them: /tmp/symfony-app/app.env, lines
// KEY=VALUE, which the integration test writes (the AMQP URL holds the
// stack's password). /tmp/symfony-app/deploy.php, when the test writes one,
// is loaded too: a deploy gone wrong, for the test of an application that
// cannot boot.

declare(strict_types=1);

if (is_file(dirname(__DIR__) . '/vendor/autoload.php')) {
    // The image's: Composer's class loader alone, as an application
    // installed with Composer has it (composer.json; composer dump-autoload
    // --optimize at the image's build). Symfony writes the container's
    // preload file (config/preload.php) only for an application so loaded.
    require dirname(__DIR__) . '/vendor/autoload.php';
} else {
    foreach (
        [
            'Bundle/FrameworkBundle', 'Component/Messenger', 'Component/Messenger/Bridge/Amqp',
            'Component/Serializer', 'Component/PropertyAccess', 'Component/PropertyInfo',
        ] as $package
    ) {
        require_once "/usr/share/php/Symfony/{$package}/autoload.php";
    }
    require_once __DIR__ . '/composer-runtime.php';
    require_once is_file('/app/symfony/autoload.php')
        ? '/app/symfony/autoload.php'
        : dirname(__DIR__, 4) . '/php/symfony/autoload.php';
    spl_autoload_register(static function (string $class): void {
        if (str_starts_with($class, 'App\\')) {
            $file = dirname(__DIR__) . '/src/' . str_replace('\\', '/', substr($class, 4)) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}

const APP_STATE_DIR = '/tmp/symfony-app';

$settings = APP_STATE_DIR . '/app.env';
if (is_file($settings)) {
    foreach (file($settings, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $line) {
        [$name, $value] = array_pad(explode('=', $line, 2), 2, '');
        $_SERVER[$name] = $_ENV[$name] = $value;
    }
}
if (is_file(APP_STATE_DIR . '/deploy.php')) {
    require APP_STATE_DIR . '/deploy.php';
}
