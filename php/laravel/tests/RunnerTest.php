<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests;

use Fpmq\Laravel\Runner;
use Fpmq\Laravel\Tests\Fixtures\Log;
use Fpmq\Laravel\Tests\Fixtures\TestJob;
use Fpmq\Worker\Job as WorkerJob;
use Fpmq\Worker\RecordingHeaderEmitter;
use Illuminate\Foundation\Application;
use Illuminate\Queue\Events\JobExceptionOccurred;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Events\JobProcessed;
use Illuminate\Queue\Events\JobProcessing;
use PHPUnit\Framework\TestCase;

/**
 * RunnerTest runs jobs through Runner in a real Laravel application and
 * checks the answer the daemon would get.
 */
final class RunnerTest extends TestCase
{
    private Application $app;

    /** @var list<string> the Job* events fired, as "Event attempt" */
    private array $events = [];

    protected function setUp(): void
    {
        Log::$entries = [];
        $this->app = TestApplication::create();
        $this->listen();
    }

    /** listen records the queue events of $this->app. */
    private function listen(): void
    {
        $this->events = [];
        foreach ([JobProcessing::class, JobProcessed::class, JobExceptionOccurred::class, JobFailed::class] as $class) {
            $this->app->make('events')->listen($class, function (object $e): void {
                $this->events[] = (new \ReflectionClass($e))->getShortName() . ' ' . $e->job->attempts();
            });
        }
    }

    /**
     * run runs $body as fpmq's attempt $attempt of $max and returns the answer.
     *
     * @param array<string, mixed> $headers the message's AMQP headers
     * @return array{?int, array<string, string>}
     */
    private function runJob(string $body, int $attempt = 1, int $max = 5, array $headers = []): array
    {
        $emitter = new RecordingHeaderEmitter();
        $message = json_encode(['properties' => ['message_id' => 'm-1'], 'headers' => (object) $headers]);
        $job = WorkerJob::fromArrays([
            'HTTP_X_MESSAGE_ID' => 'm-1',
            'HTTP_X_ATTEMPT' => (string) $attempt,
            'HTTP_X_MAX_ATTEMPTS' => (string) $max,
            'HTTP_X_QUEUE' => 'jobs',
            'HTTP_X_FPMQ_MESSAGE' => $message,
        ], [], $body, $emitter);
        ob_start();
        try {
            (new Runner($this->app))->run($job);
        } finally {
            ob_end_clean();
        }
        return [$emitter->getStatus(), $emitter->getHeaders()];
    }

    public function testASucceedingJobIsDone(): void
    {
        [$status, $headers] = $this->runJob(TestApplication::payload($this->app, new TestJob('a')));
        self::assertSame(200, $status);
        self::assertSame([], $headers);
        self::assertSame(['run a 1'], Log::$entries);
        self::assertSame(['JobProcessing 1', 'JobProcessed 1'], $this->events);
    }

    public function testBackoffAnswersLaravelsDelayAndTheJobsTries(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('b', ['throw', 'throw', 'ok'], 3, [1, 2]));
        self::assertSame(
            [503, ['Fpmq-Max-Attempts' => '3', 'Fpmq-Retry-In' => '1']],
            $this->runJob($body, 1),
        );
        self::assertSame(
            [503, ['Fpmq-Max-Attempts' => '3', 'Fpmq-Retry-In' => '2']],
            $this->runJob($body, 2, 3),
        );
        self::assertSame([200, ['Fpmq-Max-Attempts' => '3']], $this->runJob($body, 3, 3));
        self::assertSame(['run b 1', 'run b 2', 'run b 3'], Log::$entries);
        self::assertSame(
            ['JobProcessing 1', 'JobExceptionOccurred 1', 'JobProcessing 2', 'JobExceptionOccurred 2',
                'JobProcessing 3', 'JobProcessed 3'],
            $this->events,
        );
    }

    public function testTheLastTryFailsTheJobAndRecordsIt(): void
    {
        $job = new TestJob('c', ['throw'], 2);
        $body = TestApplication::payload($this->app, $job);
        [$status, $headers] = $this->runJob($body, 2, 2);
        self::assertSame(422, $status);
        self::assertSame('RuntimeException: c broke on attempt 2', $headers['Fpmq-Fail']);
        self::assertSame(['run c 2', 'failed c RuntimeException: c broke on attempt 2'], Log::$entries);
        self::assertContains('JobFailed 2', $this->events);
        $failed = TestApplication::failedJobs($this->app);
        self::assertCount(1, $failed);
        self::assertSame(json_decode($body, true)['uuid'], $failed[0]['uuid']);
        self::assertSame(['fpmq', 'jobs'], [$failed[0]['connection'], $failed[0]['queue']]);
        self::assertStringStartsWith('RuntimeException: c broke on attempt 2', $failed[0]['exception']);
    }

    public function testWithoutBackoffAnExceptionTakesFpmqsDelay(): void
    {
        [$status, $headers] = $this->runJob(TestApplication::payload($this->app, new TestJob('d', ['throw'])));
        self::assertSame(500, $status, 'a failed attempt that the daemon retries after its own delay');
        self::assertSame([], $headers);
    }

    public function testTheConnectionsBackoffIsLaravelsDefault(): void
    {
        $this->app = TestApplication::create(['backoff' => 7]);
        [$status, $headers] = $this->runJob(TestApplication::payload($this->app, new TestJob('e', ['throw'])));
        self::assertSame([503, ['Fpmq-Retry-In' => '7']], [$status, $headers]);
    }

    public function testReleaseAnswersItsDelay(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('f', ['release:5', 'ok']));
        self::assertSame([503, ['Fpmq-Retry-In' => '5']], $this->runJob($body, 1));
        self::assertSame([200, []], $this->runJob($body, 2));
        self::assertSame(['run f 1', 'run f 2'], Log::$entries);
    }

    public function testAReleaseAtTheLastAttemptFailsTheJob(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('g', ['release:5']));
        [$status, $headers] = $this->runJob($body, 5, 5);
        self::assertSame(422, $status);
        self::assertStringStartsWith('Illuminate\Queue\MaxAttemptsExceededException: ', $headers['Fpmq-Fail']);
        self::assertCount(1, TestApplication::failedJobs($this->app));
    }

    public function testFailByTheJobIsDeadLetteredWithItsReason(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('h', ['fail:no such user']));
        self::assertSame(
            [422, ['Fpmq-Fail' => 'Illuminate\Queue\ManuallyFailedException: no such user']],
            $this->runJob($body),
        );
        self::assertSame(['run h 1', 'failed h Illuminate\Queue\ManuallyFailedException: no such user'], Log::$entries);
    }

    public function testRetryUntilAsksForTheMostAttempts(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('i', ['throw'], null, 3, time() + 600));
        self::assertSame([503, ['Fpmq-Max-Attempts' => '1000', 'Fpmq-Retry-In' => '3']], $this->runJob($body, 5, 5));
    }

    public function testATimePastRetryUntilFailsTheJob(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('j', ['throw'], null, 3, time() - 1));
        [$status, $headers] = $this->runJob($body, 2);
        self::assertSame(422, $status);
        self::assertSame('1000', $headers['Fpmq-Max-Attempts']);
        self::assertStringStartsWith('Illuminate\Queue\MaxAttemptsExceededException: ', $headers['Fpmq-Fail']);
    }

    public function testALaravelQueueRabbitmqMessageCountsItsEarlierAttempts(): void
    {
        $body = TestApplication::payload($this->app, new TestJob('k', ['throw'], 4, 2));
        // Two runs before fpmq's first: attempt 1 of fpmq is Laravel's 3rd,
        // and fpmq gives it the 2 runs left of its 4 tries.
        self::assertSame(
            [503, ['Fpmq-Max-Attempts' => '2', 'Fpmq-Retry-In' => '2']],
            $this->runJob($body, 1, 5, ['laravel' => ['attempts' => 2]]),
        );
        [$status, $headers] = $this->runJob($body, 2, 2, ['laravel' => ['attempts' => 2]]);
        self::assertSame(422, $status);
        self::assertSame('RuntimeException: k broke on attempt 4', $headers['Fpmq-Fail']);
        self::assertSame(['run k 3', 'run k 4', 'failed k RuntimeException: k broke on attempt 4'], Log::$entries);
    }

    public function testABodyThatIsNoLaravelPayloadFailsNamingWhatWasExpected(): void
    {
        foreach (['{"hello":"world"}', '[1,2]', 'not json', '{"job":"X@call"}'] as $body) {
            [$status, $headers] = $this->runJob($body);
            self::assertSame(422, $status, $body);
            $want = 'not a Laravel queue payload: a JSON object with "job"';
            self::assertStringStartsWith($want, $headers['Fpmq-Fail'], $body);
        }
        self::assertSame([], $this->events);
    }

    public function testAMissingJobClassFailsOnceAndIsRecorded(): void
    {
        $payload = json_decode(TestApplication::payload($this->app, new TestJob('l')), true);
        $payload['displayName'] = $payload['data']['commandName'] = 'App\Jobs\Removed';
        $payload['data']['command'] = 'O:16:"App\Jobs\Removed":1:{s:3:"tag";s:1:"l";}';
        [$status, $headers] = $this->runJob((string) json_encode($payload));
        self::assertSame(422, $status);
        self::assertSame(
            'Fpmq\Laravel\MissingJobClassException: job class App\Jobs\Removed does not exist in this application'
            . ' (removed or renamed by a deploy?)',
            $headers['Fpmq-Fail'],
        );
        self::assertSame(['JobFailed 1'], $this->events);
        self::assertCount(1, TestApplication::failedJobs($this->app));
    }

    public function testAMissingHandlerClassFails(): void
    {
        $payload = json_decode(TestApplication::payload($this->app, new TestJob('m')), true);
        $payload['job'] = 'App\Handlers\Gone@handle';
        [$status, $headers] = $this->runJob((string) json_encode($payload));
        self::assertSame(422, $status);
        self::assertStringContainsString('job class App\Handlers\Gone does not exist', $headers['Fpmq-Fail']);
    }
}
