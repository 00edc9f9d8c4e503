<?php

// Loads the package for its tests: composer's autoloader when `composer
// install` ran in the package, else php/autoload.php (Debian's phpunit).

declare(strict_types=1);

$vendor = dirname(__DIR__) . '/vendor/autoload.php';
require_once is_file($vendor) ? $vendor : dirname(__DIR__, 2) . '/autoload.php';
