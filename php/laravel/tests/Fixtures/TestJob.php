<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests\Fixtures;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Queue\InteractsWithQueue;

/**
 * TestJob does what $do says on each attempt: "ok", "throw", "release:N",
 * "fail:REASON"; the last entry applies to later attempts. It logs
 * "run TAG ATTEMPT" and "failed TAG EXCEPTION" (failed()).
 */
final class TestJob implements ShouldQueue
{
    use InteractsWithQueue;
    use Queueable;

    /** @var int|null */
    public $tries;

    /** @var list<int>|int|null */
    public $backoff;

    /**
     * @param list<string> $do
     */
    public function __construct(
        public string $tag,
        public array $do = ['ok'],
        ?int $tries = null,
        array|int|null $backoff = null,
        public ?int $until = null,
    ) {
        $this->tries = $tries;
        $this->backoff = $backoff;
    }

    public function retryUntil(): ?\DateTimeInterface
    {
        return $this->until === null ? null : (new \DateTimeImmutable())->setTimestamp($this->until);
    }

    public function handle(): void
    {
        $attempt = $this->attempts();
        Log::add("run {$this->tag} {$attempt}");
        $do = $this->do[min($attempt, count($this->do)) - 1];
        if ($do === 'throw') {
            throw new \RuntimeException("{$this->tag} broke on attempt {$attempt}");
        }
        if (str_starts_with($do, 'release:')) {
            $this->release((int) substr($do, 8));
        }
        if (str_starts_with($do, 'fail:')) {
            $this->fail(substr($do, 5));
        }
    }

    public function failed(?\Throwable $e): void
    {
        Log::add("failed {$this->tag} " . ($e === null ? 'null' : $e::class . ': ' . $e->getMessage()));
    }
}
