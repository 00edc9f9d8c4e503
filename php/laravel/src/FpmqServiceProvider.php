<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Illuminate\Queue\QueueManager;
use Illuminate\Support\ServiceProvider;

/**
 * FpmqServiceProvider adds the queue driver 'fpmq' (FpmqConnector) to
 * Laravel's queue manager, and the console command fpmq:preload
 * (PreloadCommand). Package discovery registers it (composer.json's
 * extra.laravel.providers); without discovery, list it in config/app.php.
 */
final class FpmqServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->callAfterResolving('queue', static function (QueueManager $manager): void {
            $manager->addConnector(Runner::DRIVER, static fn (): FpmqConnector => new FpmqConnector());
        });
    }

    public function boot(): void
    {
        if ($this->app->runningInConsole()) {
            $this->commands([PreloadCommand::class]);
        }
    }
}
