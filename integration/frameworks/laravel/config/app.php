<?php

declare(strict_types=1);

use Illuminate\Support\Facades\Facade;
use Illuminate\Support\ServiceProvider;

return [
    'name' => 'fpmq-laravel-test',
    'env' => 'production',
    'debug' => false,
    'url' => 'http://localhost',
    'timezone' => 'UTC',
    'locale' => 'en',
    'fallback_locale' => 'en',
    // A test application's key, never a real one.
    'key' => 'base64:' . base64_encode(str_repeat('fpmq-test-key-32', 2)),
    'cipher' => 'AES-256-CBC',
    'maintenance' => ['driver' => 'file'],
    // Package discovery adds Fpmq\Laravel\FpmqServiceProvider (vendor/composer/installed.json).
    'providers' => ServiceProvider::defaultProviders()->merge([
        App\Providers\AppServiceProvider::class,
    ])->toArray(),
    'aliases' => Facade::defaultAliases()->toArray(),
];
