<?php

declare(strict_types=1);

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/**
 * RemovedJob exists only for artisan.php, outside app/: the pool's
 * application cannot load it, as if a deploy had removed it after it was
 * dispatched.
 */
final class RemovedJob implements ShouldQueue
{
    use Dispatchable;
    use InteractsWithQueue;
    use Queueable;
    use SerializesModels;

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
    }
}
