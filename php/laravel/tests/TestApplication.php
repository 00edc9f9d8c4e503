<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests;

use Fpmq\Laravel\FpmqServiceProvider;
use Illuminate\Bus\BusServiceProvider;
use Illuminate\Cache\CacheServiceProvider;
use Illuminate\Config\Repository;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Database\DatabaseServiceProvider;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Encryption\EncryptionServiceProvider;
use Illuminate\Filesystem\FilesystemServiceProvider;
use Illuminate\Foundation\Application;
use Illuminate\Foundation\Exceptions\Handler;
use Illuminate\Queue\NullQueue;
use Illuminate\Queue\QueueServiceProvider;
use Illuminate\Support\Facades\Facade;
use Monolog\Handler\NullHandler;

/**
 * TestApplication makes a real Laravel application for the tests: the
 * queue, bus, cache (array), database (sqlite in memory, with the
 * failed-jobs table) and fpmq's provider, and Laravel's own exception
 * handler, whose logs go nowhere.
 */
final class TestApplication
{
    /**
     * create returns a booted application whose 'fpmq' connection has the
     * extra keys $connection.
     *
     * @param array<string, mixed> $connection
     */
    public static function create(array $connection = []): Application
    {
        $app = new Application(sys_get_temp_dir());
        $app->instance('config', new Repository([
            'app' => ['key' => 'base64:' . base64_encode(str_repeat('k', 32)), 'cipher' => 'AES-256-CBC'],
            'queue' => [
                'default' => 'fpmq',
                'connections' => [
                    'fpmq' => $connection + [
                        'driver' => 'fpmq',
                        'url' => 'amqp://u:p@broker.invalid:5672/v',
                        'queue' => 'jobs',
                    ],
                ],
                'failed' => ['driver' => 'database-uuids', 'database' => 'testing', 'table' => 'failed_jobs'],
            ],
            'cache' => ['default' => 'array', 'stores' => ['array' => ['driver' => 'array', 'serialize' => false]]],
            'database' => [
                'default' => 'testing',
                'connections' => ['testing' => ['driver' => 'sqlite', 'database' => ':memory:', 'prefix' => '']],
            ],
            'logging' => [
                'default' => 'null',
                'channels' => ['null' => ['driver' => 'monolog', 'handler' => NullHandler::class]],
            ],
        ]));
        $app->singleton(ExceptionHandler::class, Handler::class);
        foreach (
            [
                FilesystemServiceProvider::class,
                EncryptionServiceProvider::class,
                DatabaseServiceProvider::class,
                CacheServiceProvider::class,
                BusServiceProvider::class,
                QueueServiceProvider::class,
                FpmqServiceProvider::class,
            ] as $provider
        ) {
            $app->register($provider);
        }
        $app->boot();
        Facade::clearResolvedInstances();
        Facade::setFacadeApplication($app);

        $app->make('db')->connection()->getSchemaBuilder()->create('failed_jobs', static function (Blueprint $t): void {
            $t->id();
            $t->string('uuid')->unique();
            $t->text('connection');
            $t->text('queue');
            $t->longText('payload');
            $t->longText('exception');
            $t->timestamp('failed_at')->useCurrent();
        });
        return $app;
    }

    /** payload returns the payload Laravel's queues publish for $job. */
    public static function payload(Application $app, object $job, string $queue = 'jobs'): string
    {
        $maker = new class extends NullQueue {
            public function payloadOf(object $job, string $queue): string
            {
                return $this->createPayload($job, $queue);
            }
        };
        $maker->setContainer($app);
        return $maker->payloadOf($job, $queue);
    }

    /**
     * failedJobs returns the failed-jobs store's rows: uuid, connection,
     * queue and the exception's first line.
     *
     * @return list<array{uuid: string, connection: string, queue: string, exception: string}>
     */
    public static function failedJobs(Application $app): array
    {
        $rows = [];
        foreach ($app->make('db')->connection()->table('failed_jobs')->orderBy('id')->get() as $row) {
            $rows[] = [
                'uuid' => (string) $row->uuid,
                'connection' => (string) $row->connection,
                'queue' => (string) $row->queue,
                'exception' => (string) strtok((string) $row->exception, "\n"),
            ];
        }
        return $rows;
    }
}
