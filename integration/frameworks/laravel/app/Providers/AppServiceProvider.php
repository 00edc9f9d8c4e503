<?php

declare(strict_types=1);

namespace App\Providers;

use App\Jobs\NoopJob;
use App\Runs;
use Illuminate\Queue\Events\JobExceptionOccurred;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Events\JobProcessed;
use Illuminate\Queue\Events\JobProcessing;
use Illuminate\Support\Facades\Event;
use Illuminate\Support\ServiceProvider;

/** AppServiceProvider records the queue's Job* events, as Sentry or Telescope would hook there. */
final class AppServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        $classes = [JobProcessing::class, JobProcessed::class, JobExceptionOccurred::class, JobFailed::class];
        foreach ($classes as $class) {
            Event::listen($class, static function (object $event): void {
                if ($event->job->resolveName() === NoopJob::class) {
                    return; // the benchmark's job records nothing
                }
                Runs::record('event', [
                    'event' => (new \ReflectionClass($event))->getShortName(),
                    'id' => $event->job->uuid(),
                    'attempt' => $event->job->attempts(),
                    'connection' => $event->connectionName,
                ]);
            });
        }
    }
}
