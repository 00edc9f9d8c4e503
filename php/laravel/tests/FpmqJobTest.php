<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests;

use Fpmq\Laravel\FpmqJob;
use Fpmq\Laravel\Tests\Fixtures\TestJob;
use Fpmq\Worker\Job as WorkerJob;
use PHPUnit\Framework\TestCase;

/** FpmqJobTest checks how an fpmq run maps onto Laravel's queue job. */
final class FpmqJobTest extends TestCase
{
    private function job(string $body, int $attempt = 1, int $earlier = 0): FpmqJob
    {
        $server = ['HTTP_X_MESSAGE_ID' => 'fpmq-id', 'HTTP_X_ATTEMPT' => (string) $attempt];
        $run = WorkerJob::fromArrays($server, [], $body);
        return new FpmqJob(TestApplication::create(), $run, $body, 'fpmq', 'jobs', $earlier);
    }

    public function testThePayloadMapsOntoTheJob(): void
    {
        $app = TestApplication::create();
        $body = TestApplication::payload($app, new TestJob('a', ['ok'], 3, [1, 2]));
        $payload = json_decode($body, true);
        $job = $this->job($body, 2);
        self::assertSame($payload['uuid'], $job->getJobId());
        self::assertSame($payload['uuid'], $job->uuid());
        self::assertSame($body, $job->getRawBody());
        self::assertSame('jobs', $job->getQueue());
        self::assertSame('fpmq', $job->getConnectionName());
        self::assertSame(TestJob::class, $job->resolveName());
        self::assertSame(2, $job->attempts());
        self::assertSame(3, $job->maxTries());
        self::assertSame('1,2', $job->backoff());
    }

    public function testWithoutAUuidTheIdIsTheRabbitmqPayloadsIdOrFpmqs(): void
    {
        self::assertSame('p-7', $this->job('{"id":"p-7","job":"X@call","data":{}}')->getJobId());
        self::assertSame('fpmq-id', $this->job('{"job":"X@call","data":{}}')->getJobId());
    }

    public function testEarlierAttemptsAddToFpmqsCount(): void
    {
        $job = $this->job('{"job":"X@call","data":{}}', 2, 3);
        self::assertSame(5, $job->attempts());
        self::assertSame(3, $job->earlierAttempts());
    }

    public function testReleaseKeepsItsDelayInSeconds(): void
    {
        $job = $this->job('{"job":"X@call","data":{}}');
        self::assertNull($job->releaseDelay());
        $job->release(new \DateInterval('PT90S'));
        self::assertTrue($job->isReleased());
        self::assertSame(90, $job->releaseDelay());
        $job = $this->job('{"job":"X@call","data":{}}');
        $job->release(12);
        self::assertSame(12, $job->releaseDelay());
    }
}
