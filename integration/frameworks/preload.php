<?php

// opcache.preload of the php-frameworks image's php-fpm, whose pools run
// both test applications: each application's own preload script, as its
// deploy wrote it (see the Dockerfile). A php-fpm that runs one
// application's jobs preloads that application's script alone.

declare(strict_types=1);

require '/srv/laravel/bootstrap/cache/fpmq-preload.php';
require '/srv/symfony/config/preload.php';
