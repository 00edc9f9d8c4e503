<?php

declare(strict_types=1);

namespace Fpmq\Laravel\Tests;

use Fpmq\Laravel\FpmqConnector;
use Fpmq\Laravel\FpmqQueue;
use PHPUnit\Framework\TestCase;

/**
 * FpmqQueueTest checks the connection as Laravel's queue manager makes it,
 * without a broker (publishing is tested on the real one in
 * integration/laravel_test.go).
 */
final class FpmqQueueTest extends TestCase
{
    public function testTheProviderAddsTheDriverAndNothingConnectsEarly(): void
    {
        $app = TestApplication::create(['queue' => 'mail']);
        $queue = $app->make('queue')->connection('fpmq');
        self::assertInstanceOf(FpmqQueue::class, $queue);
        self::assertSame('fpmq', $queue->getConnectionName());
        self::assertSame('mail', $queue->getQueue(null));
        self::assertSame('reports', $queue->getQueue('reports'));
    }

    public function testAConnectionNeedsABroker(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('needs a url, or a host');
        (new FpmqConnector())->connect(['driver' => 'fpmq', 'queue' => 'jobs']);
    }

    public function testABadUrlIsNotRepeated(): void
    {
        try {
            (new FpmqConnector())->connect(['url' => 'http://user:secret@host/', 'queue' => 'jobs']);
            self::fail('no exception');
        } catch (\InvalidArgumentException $e) {
            self::assertStringNotContainsString('secret', $e->getMessage());
        }
    }

    public function testAnUnreachableBrokerThrowsWhenUsedWithoutItsPassword(): void
    {
        $queue = (new FpmqConnector())->connect(
            ['host' => '127.0.0.1', 'port' => 1, 'password' => 'secret', 'timeout' => 1],
        );
        try {
            $queue->pushRaw('{"job":"X@call","data":{}}');
            self::fail('no exception');
        } catch (\RuntimeException $e) {
            self::assertStringStartsWith('fpmq: connect to 127.0.0.1:1: ', $e->getMessage());
            self::assertStringNotContainsString('secret', $e->getMessage());
        }
    }
}
