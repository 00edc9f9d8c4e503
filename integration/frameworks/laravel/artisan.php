<?php

// The test application's command line, a small stand-in for artisan run in
// the php-fpm container by the integration test (integration/laravel_test.go):
//
//   php artisan.php setup                     creates the sqlite failed_jobs and job_batches tables
//   php artisan.php dispatch KIND TAG [DELAY] dispatches a job (record, flaky, release,
//                                             failing, removed), DELAY seconds later;
//                                             prints "dispatched ID AT"
//   php artisan.php chain TAG                 dispatches RecordJob TAG-1, TAG-2, TAG-3 as a chain
//   php artisan.php batch TAG                 dispatches RecordJob TAG-1, TAG-2 as the batch TAG, whose
//                                             then() and finally() callbacks record "batch" lines;
//                                             prints "dispatched BATCH-ID"
//   php artisan.php payload TAG               prints the payload of a RecordJob, with an "id" as
//                                             laravel-queue-rabbitmq adds one, without publishing it
//   php artisan.php failed                    prints the failed-jobs store as JSON
//   php artisan.php size QUEUE                prints Queue::size(QUEUE)
//   php artisan.php noop QUEUE [N]            dispatches N (1) NoopJobs to QUEUE

declare(strict_types=1);

use App\Jobs\FailingJob;
use App\Jobs\FlakyJob;
use App\Jobs\NoopJob;
use App\Jobs\RecordJob;
use App\Jobs\ReleaseJob;
use App\Jobs\RemovedJob;
use Illuminate\Bus\Batch;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Bus;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Queue;
use Illuminate\Support\Facades\Schema;
use Illuminate\Support\Str;

require __DIR__ . '/vendor/autoload.php';
$app = require __DIR__ . '/bootstrap/app.php';
$app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();

$args = array_slice($argv, 1);
switch ($args[0] ?? '') {
    case 'setup':
        touch('/tmp/laravel/database.sqlite');
        if (!Schema::hasTable('failed_jobs')) {
            Schema::create('failed_jobs', static function (Blueprint $table): void {
                $table->id();
                $table->string('uuid')->unique();
                $table->text('connection');
                $table->text('queue');
                $table->longText('payload');
                $table->longText('exception');
                $table->timestamp('failed_at')->useCurrent();
            });
        }
        if (!Schema::hasTable('job_batches')) {
            // Laravel's own schema (php artisan queue:batches-table).
            Schema::create('job_batches', static function (Blueprint $table): void {
                $table->string('id')->primary();
                $table->string('name');
                $table->integer('total_jobs');
                $table->integer('pending_jobs');
                $table->integer('failed_jobs');
                $table->longText('failed_job_ids');
                $table->mediumText('options')->nullable();
                $table->integer('cancelled_at')->nullable();
                $table->integer('created_at');
                $table->integer('finished_at')->nullable();
            });
        }
        echo "ok\n";
        break;
    case 'dispatch':
        $tag = $args[2] ?? 'job';
        if ($args[1] === 'removed') {
            require __DIR__ . '/cli/RemovedJob.php';
        }
        $job = match ($args[1]) {
            'record' => new RecordJob($tag),
            'flaky' => new FlakyJob($tag),
            'release' => new ReleaseJob($tag),
            'failing' => new FailingJob($tag),
            'removed' => new RemovedJob($tag),
        };
        if (isset($args[3])) {
            $job->delay((int) $args[3]);
        }
        $at = microtime(true);
        $id = Bus::dispatch($job);
        printf("dispatched %s %.6F\n", $id, $at);
        break;
    case 'chain':
        $tag = $args[1] ?? 'chain';
        Bus::chain([new RecordJob("{$tag}-1"), new RecordJob("{$tag}-2"), new RecordJob("{$tag}-3")])->dispatch();
        echo "dispatched\n";
        break;
    case 'batch':
        $tag = $args[1] ?? 'batch';
        $batch = Bus::batch([new RecordJob("{$tag}-1"), new RecordJob("{$tag}-2")])
            ->name($tag)
            ->then(static function (Batch $batch): void {
                App\Runs::record('batch', ['tag' => 'then', 'id' => $batch->id, 'pending' => $batch->pendingJobs]);
            })
            ->finally(static function (Batch $batch): void {
                App\Runs::record('batch', ['tag' => 'finally', 'id' => $batch->id, 'pending' => $batch->pendingJobs]);
            })
            ->dispatch();
        echo "dispatched {$batch->id}\n";
        break;
    case 'payload':
        $queue = new class extends Illuminate\Queue\NullQueue {
            /** @return array<string, mixed> */
            public function payloadOf(object $job, string $queue): array
            {
                return json_decode($this->createPayload($job, $queue), true, 512, JSON_THROW_ON_ERROR);
            }
        };
        $queue->setContainer($app);
        $payload = $queue->payloadOf(new RecordJob($args[1] ?? 'payload'), 'laravel');
        echo json_encode($payload + ['id' => (string) Str::uuid()], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'failed':
        $rows = DB::table('failed_jobs')->orderBy('id')->get(['uuid', 'connection', 'queue', 'exception']);
        echo json_encode($rows->map(static fn (object $row): array => [
            'uuid' => $row->uuid,
            'connection' => $row->connection,
            'queue' => $row->queue,
            'exception' => strtok($row->exception, "\n"),
        ])->all(), JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'noop':
        for ($i = (int) ($args[2] ?? 1); $i > 0; $i--) {
            NoopJob::dispatch()->onQueue($args[1]);
        }
        echo "ok\n";
        break;
    case 'size':
        echo Queue::size($args[1] ?? null), "\n";
        break;
    default:
        fwrite(STDERR, "usage: php artisan.php setup|dispatch|chain|batch|payload|failed|size|noop ...\n");
        exit(2);
}
