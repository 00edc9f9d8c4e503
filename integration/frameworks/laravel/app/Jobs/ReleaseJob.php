<?php

declare(strict_types=1);

namespace App\Jobs;

use App\Runs;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/** ReleaseJob releases itself for 5 seconds on its first attempt, then succeeds. */
final class ReleaseJob implements ShouldQueue
{
    use Dispatchable;
    use InteractsWithQueue;
    use Queueable;
    use SerializesModels;

    public int $tries = 3;

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
        Runs::record('run', ['tag' => $this->tag, 'id' => $this->job?->uuid(), 'attempt' => $this->attempts()]);
        if ($this->attempts() === 1) {
            $this->release(5);
        }
    }
}
