<?php

declare(strict_types=1);

namespace App\Jobs;

use App\Runs;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/** FlakyJob throws on its first two attempts and succeeds on the third. */
final class FlakyJob implements ShouldQueue
{
    use Dispatchable;
    use InteractsWithQueue;
    use Queueable;
    use SerializesModels;

    public int $tries = 3;

    /** @var list<int> */
    public array $backoff = [1, 2];

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
        Runs::record('run', ['tag' => $this->tag, 'id' => $this->job?->uuid(), 'attempt' => $this->attempts()]);
        if ($this->attempts() < 3) {
            throw new \RuntimeException("flaky attempt {$this->attempts()}");
        }
    }
}
