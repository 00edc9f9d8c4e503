<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

use Fpmq\Worker\Job as WorkerJob;
use Fpmq\Worker\Table;
use Fpmq\Worker\WorkerException;
use Illuminate\Contracts\Console\Kernel as ConsoleKernel;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Contracts\Foundation\Application;
use Illuminate\Queue\CallQueuedHandler;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Events\JobReleasedAfterException;
use Illuminate\Queue\Jobs\JobName;
use Illuminate\Queue\MaxAttemptsExceededException;
use Illuminate\Queue\Worker;
use Illuminate\Queue\WorkerOptions;

/**
 * Runner runs one Laravel queued job per php-fpm request: the fpmq daemon
 * (REQUEST_BODY=raw) hands it the payload FpmqQueue published, and the
 * application's pool entry script calls Runner::handle($app). It runs the
 * job through Laravel's own queue worker (Illuminate\Queue\Worker::process),
 * so the Job* events fire and $tries, $backoff, retryUntil(), $maxExceptions,
 * release(), fail() and failed() behave as under `queue:work`, and answers
 * the daemon with what Laravel decided:
 *
 *  - done (deleted) → 200: acked;
 *  - released, by the job or after an exception → Fpmq-Retry-In with the
 *    delay Laravel chose ($backoff, release($delay)); after an exception of
 *    a job with no $backoff, on a connection with no 'backoff', a plain
 *    failed attempt (500), which the daemon retries after its own growing
 *    delay (queue:work would retry at once);
 *  - released at its last attempt → failed at once with
 *    MaxAttemptsExceededException, as queue:work fails it when it comes back;
 *  - failed (its tries spent, fail(), maxExceptions) → Fpmq-Fail with
 *    "ExceptionClass: message": dead-lettered at once, after failed() ran and
 *    the failed-jobs store (queue.failer) recorded it, as queue:work does.
 *
 * A job with its own limit ($tries, retryUntil()) answers Fpmq-Max-Attempts
 * on every run, so that fpmq's count never cuts it short; other jobs get the
 * route's MAX_ATTEMPTS, which is then Laravel's tries too.
 */
final class Runner
{
    /** The driver name of fpmq's queue connections in config/queue.php. */
    public const DRIVER = 'fpmq';

    /** The worker name Laravel's WorkerOptions carry. */
    private const WORKER_NAME = 'fpmq';

    private readonly string $connection;

    /**
     * @param Application $app a bootstrapped application
     * @param string|null $connection the queue connection the jobs belong to: by default the
     *        default connection if its driver is fpmq, else the first fpmq one
     */
    public function __construct(private readonly Application $app, ?string $connection = null)
    {
        $this->connection = $connection ?? self::fpmqConnection($app);
    }

    /**
     * handle runs the job of the current php-fpm request in $app: it checks
     * the payload, bootstraps the console kernel, runs the job and sets the
     * response's status and headers. A payload that is not Laravel's is
     * failed before the application boots; an application that cannot boot
     * answers a failed attempt (500, the error in the daemon's log), which
     * the daemon retries: nothing is lost.
     *
     * @param string|null $connection see __construct
     */
    public static function handle(Application $app, ?string $connection = null): void
    {
        $run = WorkerJob::fromGlobals();
        $problem = Payload::problem($run->body());
        if ($problem !== null) {
            $run->fail($problem);
            return;
        }
        try {
            $app->make(ConsoleKernel::class)->bootstrap();
            $runner = new self($app, $connection);
        } catch (\Throwable $e) {
            error_log('fpmq: the Laravel application did not boot: ' . self::describe($e));
            $run->retry();
            return;
        }
        $runner->run($run);
    }

    /**
     * run runs the job $run carries and answers it. Output the job prints
     * goes to the response body after the answer.
     */
    public function run(WorkerJob $run): void
    {
        $body = $run->body();
        $problem = Payload::problem($body);
        if ($problem !== null) {
            $run->fail($problem);
            return;
        }
        $job = new FpmqJob(
            $this->app,
            $run,
            $body,
            $this->connection,
            $run->queue() !== '' ? $run->queue() : $this->defaultQueue(),
            self::earlierAttempts($run),
        );
        $limit = self::attemptLimit($job);
        if ($limit !== null) {
            $run->withMaxAttempts($limit);
        }

        ob_start();
        try {
            $releasedAfterException = $this->process($job, $run);
            $this->answer($job, $run, $releasedAfterException);
        } finally {
            ob_end_flush();
        }
    }

    /**
     * process runs $job through Laravel's worker, reporting an exception as
     * queue:work does, and says whether the worker released it after an
     * exception.
     */
    private function process(FpmqJob $job, WorkerJob $run): bool
    {
        /** @var Dispatcher $events */
        $events = $this->app->make('events');
        $releasedAfterException = false;
        $events->listen(JobReleasedAfterException::class, static function (JobReleasedAfterException $e) use (
            $job,
            &$releasedAfterException,
        ): void {
            $releasedAfterException = $releasedAfterException || $e->job === $job;
        });
        if ($this->app->bound('queue.failer')) {
            // queue:work records failed jobs from its own listener, not the worker.
            $events->listen(JobFailed::class, function (JobFailed $e): void {
                $this->app->make('queue.failer')->log(
                    $e->connectionName,
                    $e->job->getQueue(),
                    $e->job->getRawBody(),
                    $e->exception,
                );
            });
        }

        try {
            $missing = $this->missingClass($job);
            if ($missing !== null) {
                $job->fail(new MissingJobClassException(
                    "job class {$missing} does not exist in this application (removed or renamed by a deploy?)"
                ));
                return false;
            }
            /** @var Worker $worker */
            $worker = $this->app->make('queue.worker');
            if ($this->app->bound('cache')) {
                // maxExceptions counts in the cache, as under queue:work.
                $worker->setCache($this->app->make('cache')->driver());
            }
            $worker->process($this->connection, $job, $this->options($run));
        } catch (\Throwable $e) {
            $this->report($e);
        }
        return $releasedAfterException;
    }

    /** answer turns what Laravel did to $job into the daemon's answer. */
    private function answer(FpmqJob $job, WorkerJob $run, bool $releasedAfterException): void
    {
        if ($job->isReleased() && !$job->hasFailed() && $this->lastAttempt($job, $run)) {
            try {
                $job->fail(MaxAttemptsExceededException::forJob($job));
            } catch (\Throwable $e) {
                $this->report($e);
            }
        }
        if ($job->hasFailed()) {
            $e = $job->failure();
            $run->fail($e === null ? 'Illuminate\Queue\ManuallyFailedException: the job failed' : self::describe($e));
            return;
        }
        if ($job->isReleased()) {
            $backoff = $this->config('backoff');
            if ($releasedAfterException && $job->backoff() === null && $backoff === null) {
                $run->retry();
                return;
            }
            $run->runAgainIn(min((int) $job->releaseDelay(), $this->delayMax()));
            return;
        }
        if (!$job->isDeleted() && !$job->hasFailed()) {
            // A handler that neither deleted nor released its job, as
            // CallQueuedHandler always does, finished it: done.
            $job->delete();
        }
        $run->done();
    }

    /**
     * lastAttempt says whether a job released now would fail on its next
     * run (Worker::markJobAsFailedIfAlreadyExceedsMaxAttempts): its tries are
     * spent and it has no retryUntil().
     */
    private function lastAttempt(FpmqJob $job, WorkerJob $run): bool
    {
        if ($job->retryUntil() !== null) {
            return false;
        }
        $tries = $job->maxTries() ?? $this->defaultTries($run);
        return (int) $tries > 0 && $job->attempts() >= (int) $tries;
    }

    /**
     * options returns the worker's options: the tries of a job without
     * $tries are the route's attempts (MAX_ATTEMPTS), the backoff of one
     * without $backoff the connection's 'backoff' (0), no timeout (see
     * README: php-fpm's request_terminate_timeout bounds a run).
     */
    private function options(WorkerJob $run): WorkerOptions
    {
        return new WorkerOptions(
            self::WORKER_NAME,
            $this->config('backoff') ?? 0,  // backoff
            128,                             // memory, MB: php-fpm's memory_limit applies
            0,                               // timeout: none, see README
            0,                               // sleep
            $this->defaultTries($run),       // maxTries
        );
    }

    /** defaultTries returns the tries of a job without $tries: the attempts the daemon gives it (1 if unknown). */
    private function defaultTries(WorkerJob $run): int
    {
        try {
            return $run->maxAttempts() ?? 1;
        } catch (WorkerException) {
            return 1;
        }
    }

    /**
     * attemptLimit returns the attempts to ask fpmq for (Fpmq-Max-Attempts):
     * the job's $tries less its runs before fpmq, or the most fpmq gives
     * (1000) to a job with retryUntil() or unlimited tries ($tries = 0); null
     * for a job without a limit of its own, which takes the route's.
     */
    private static function attemptLimit(FpmqJob $job): ?int
    {
        $tries = $job->maxTries();
        if ($job->retryUntil() !== null || ($tries !== null && (int) $tries <= 0)) {
            return WorkerJob::MAX_ATTEMPTS_LIMIT;
        }
        if ($tries === null) {
            return null;
        }
        return max(1, min(WorkerJob::MAX_ATTEMPTS_LIMIT, (int) $tries - $job->earlierAttempts()));
    }

    /**
     * earlierAttempts returns the runs a laravel-queue-rabbitmq message had
     * before fpmq's first: its `laravel` header table's attempts; 0 for
     * other messages.
     */
    private static function earlierAttempts(WorkerJob $run): int
    {
        try {
            $laravel = $run->header('laravel');
        } catch (WorkerException) {
            return 0;
        }
        if (!$laravel instanceof Table) {
            return 0;
        }
        $attempts = $laravel->get('attempts');
        return is_int($attempts) && $attempts > 0 ? $attempts : 0;
    }

    /**
     * missingClass returns the class of the job's payload that this
     * application does not have (its handler, or the queued command of
     * CallQueuedHandler), or null when it has them.
     */
    private function missingClass(FpmqJob $job): ?string
    {
        $payload = $job->payload();
        [$handler] = JobName::parse($payload['job']);
        if (!class_exists($handler) && !$this->app->bound($handler)) {
            return $handler;
        }
        $command = $payload['data']['commandName'] ?? null;
        if ($handler === CallQueuedHandler::class && is_string($command) && !class_exists($command)) {
            return $command;
        }
        return null;
    }

    private function report(\Throwable $e): void
    {
        try {
            $this->app->make(ExceptionHandler::class)->report($e);
        } catch (\Throwable $inner) {
            error_log('fpmq: ' . self::describe($e) . ' (and reporting it: ' . self::describe($inner) . ')');
        }
    }

    /** config returns the key $key of this connection's configuration. */
    private function config(string $key): mixed
    {
        return $this->app->make('config')->get("queue.connections.{$this->connection}.{$key}");
    }

    private function defaultQueue(): string
    {
        return (string) ($this->config('queue') ?? 'default');
    }

    private function delayMax(): int
    {
        return (int) ($this->config('delay_max') ?? \Fpmq\Publisher::DEFAULT_DELAY_MAX);
    }

    /** describe returns "ExceptionClass: message", or the class alone when the message is empty. */
    private static function describe(\Throwable $e): string
    {
        $message = trim($e->getMessage());
        return $message === '' ? $e::class : $e::class . ': ' . $message;
    }

    /**
     * fpmqConnection returns the name of the application's fpmq connection:
     * the default connection if its driver is fpmq, else the first with that
     * driver, else "fpmq".
     */
    private static function fpmqConnection(Application $app): string
    {
        $config = $app->make('config');
        $default = $config->get('queue.default');
        if (is_string($default) && $config->get("queue.connections.{$default}.driver") === self::DRIVER) {
            return $default;
        }
        foreach ((array) $config->get('queue.connections', []) as $name => $connection) {
            if (is_array($connection) && ($connection['driver'] ?? null) === self::DRIVER) {
                return (string) $name;
            }
        }
        return self::DRIVER;
    }
}
