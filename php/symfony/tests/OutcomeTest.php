<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests;

use Fpmq\Symfony\Outcome;
use Fpmq\Symfony\Tests\Fixtures\Jobs;
use Fpmq\Symfony\Tests\Fixtures\Ping;
use Fpmq\Worker\RecordingHeaderEmitter;
use PHPUnit\Framework\Attributes\DataProvider;
use PHPUnit\Framework\TestCase;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Exception\HandlerFailedException;
use Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException;

/** The answers an Outcome gives the daemon: status and Fpmq-* headers. */
final class OutcomeTest extends TestCase
{
    /**
     * @return iterable<string, array{Outcome, int, ?int, ?int, array<string, string>}>
     */
    public static function answers(): iterable
    {
        $boom = new \RuntimeException('boom');
        yield 'handled: done' => [Outcome::handled(), 1, 5, 200, []];
        yield 'retry after 1000 ms: 1 s, the route\'s 5 attempts kept' => [
            Outcome::retry($boom, 1000), 1, 5, 503, ['Fpmq-Max-Attempts' => '5', 'Fpmq-Retry-In' => '1'],
        ];
        yield 'retry after 1500 ms: rounded up to 2 s' => [
            Outcome::retry($boom, 1500), 2, 5, 503, ['Fpmq-Max-Attempts' => '5', 'Fpmq-Retry-In' => '2'],
        ];
        yield 'retry after 1 ms: 1 s, no sooner' => [
            Outcome::retry($boom, 1), 1, 5, 503, ['Fpmq-Max-Attempts' => '5', 'Fpmq-Retry-In' => '1'],
        ];
        yield 'retry after 0 ms: at once' => [
            Outcome::retry($boom, 0), 1, 5, 503, ['Fpmq-Max-Attempts' => '5', 'Fpmq-Retry-In' => '0'],
        ];
        yield 'retry past the route\'s MAX_ATTEMPTS: one more attempt' => [
            Outcome::retry($boom, 4000), 5, 5, 503, ['Fpmq-Max-Attempts' => '6', 'Fpmq-Retry-In' => '4'],
        ];
        yield 'retry with no limit from the daemon' => [
            Outcome::retry($boom, 1000), 3, null, 503, ['Fpmq-Max-Attempts' => '4', 'Fpmq-Retry-In' => '1'],
        ];
        yield 'retry without a strategy: fpmq\'s backoff' => [Outcome::retry($boom, null), 1, 5, 500, []];
        yield 'retry past fpmq\'s 1000 attempts: failed' => [
            Outcome::retry($boom, 1000), 1000, 1000, 422,
            ['Fpmq-Fail' => 'Symfony asked for attempt 1001, past the 1000 attempts fpmq gives a job:'
                . ' RuntimeException: boom'],
        ];
        yield 'failed: the exception as the reason' => [
            Outcome::failed($boom), 1, 5, 422, ['Fpmq-Fail' => 'RuntimeException: boom'],
        ];
        yield 'undecodable: the reason' => [
            Outcome::undecodable('not an envelope', $boom), 1, 5, 422, ['Fpmq-Fail' => 'not an envelope'],
        ];
        yield 'unsettled: fpmq\'s backoff' => [Outcome::unsettled(), 1, 5, 500, []];
    }

    /**
     * @param array<string, string> $headers
     */
    #[DataProvider('answers')]
    public function testAnswer(Outcome $outcome, int $attempt, ?int $max, int $status, array $headers): void
    {
        $emitter = new RecordingHeaderEmitter();
        $outcome->answer(Jobs::job('body', [], $attempt, $max, $emitter));

        self::assertSame($status, $emitter->getStatus());
        self::assertSame($headers, $emitter->getHeaders());
    }

    public function testHandlerFailuresNameTheExceptionsTheyWrap(): void
    {
        $failure = new HandlerFailedException(new Envelope(new Ping('p')), [
            'App\\SendMail' => new UnrecoverableMessageHandlingException('card declined'),
            'App\\Audit' => new \LogicException('no audit log'),
        ]);

        self::assertSame(
            UnrecoverableMessageHandlingException::class . ': card declined; LogicException: no audit log',
            Outcome::failed($failure)->reason,
        );
    }
}
