<?php

declare(strict_types=1);

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

/**
 * NoopJob does nothing: the framework benchmark (integration/fwbench) runs
 * it through fpmq and through `php artisan queue:work`, so that what is
 * measured is what running a job costs, not the job.
 */
final class NoopJob implements ShouldQueue
{
    use Dispatchable;
    use InteractsWithQueue;
    use Queueable;

    public function handle(): void
    {
    }
}
