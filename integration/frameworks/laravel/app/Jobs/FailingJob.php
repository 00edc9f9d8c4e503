<?php

declare(strict_types=1);

namespace App\Jobs;

use App\Runs;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/** FailingJob always throws; it has two tries and no backoff, and records its failed() call. */
final class FailingJob implements ShouldQueue
{
    use Dispatchable;
    use InteractsWithQueue;
    use Queueable;
    use SerializesModels;

    public int $tries = 2;

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
        Runs::record('run', ['tag' => $this->tag, 'id' => $this->job?->uuid(), 'attempt' => $this->attempts()]);
        throw new \DomainException("permanent failure of {$this->tag}");
    }

    public function failed(\Throwable $e): void
    {
        Runs::record('failed', ['tag' => $this->tag, 'error' => $e::class . ': ' . $e->getMessage()]);
    }
}
