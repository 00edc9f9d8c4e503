<?php

// The php-fpm pool's entry script (the daemon's SCRIPT_FILENAME): one queued
// job per request, run by the application's own queue worker.

declare(strict_types=1);

require __DIR__ . '/vendor/autoload.php';

$app = require __DIR__ . '/bootstrap/app.php';

Fpmq\Laravel\Runner::handle($app);
