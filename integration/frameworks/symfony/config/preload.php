<?php

// opcache.preload of the pools that run this application, as a Symfony
// skeleton's config/preload.php: the container's preload file, which the
// kernel writes into its build directory when it builds the container
// (cache:warmup at the image's build). Without it, nothing is preloaded.

declare(strict_types=1);

if (is_file(dirname(__DIR__) . '/var/cache/prod/App_KernelProdContainer.preload.php')) {
    require dirname(__DIR__) . '/var/cache/prod/App_KernelProdContainer.preload.php';
}
