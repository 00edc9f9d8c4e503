<?php

declare(strict_types=1);

namespace App\Jobs;

use App\Providers\AppServiceProvider;
use App\Runs;
use Fpmq\Laravel\Runner;
use Illuminate\Bus\Batchable;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use Illuminate\Queue\Worker;

/** RecordJob records its run and succeeds. */
final class RecordJob implements ShouldQueue
{
    use Batchable;
    use Dispatchable;
    use InteractsWithQueue;
    use Queueable;
    use SerializesModels;

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
        Runs::record('run', [
            'tag' => $this->tag,
            'id' => $this->job?->uuid(),
            'job_id' => $this->job?->getJobId(),
            'attempt' => $this->attempts(),
            'queue' => $this->job?->getQueue(),
            'batch' => $this->batchId,
            // The pool as the bridge's README sets it up: what the
            // application's bootstrap loads (its providers), the bridge and
            // Laravel's worker preloaded.
            'preloaded' => Runs::preloaded(AppServiceProvider::class, Runner::class, Worker::class),
        ]);
    }
}
