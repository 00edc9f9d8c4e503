<?php

declare(strict_types=1);

namespace Fpmq\Worker\Tests;

use Fpmq\Worker\Job;
use Fpmq\Worker\RecordingHeaderEmitter;
use PHPUnit\Framework\TestCase;

/** The answers a Job gives, as the status and Fpmq-* headers the daemon reads. */
final class AnswerTest extends TestCase
{
    private RecordingHeaderEmitter $emitter;

    private Job $job;

    protected function setUp(): void
    {
        $this->emitter = new RecordingHeaderEmitter();
        $this->job = Job::fromArrays(['HTTP_X_MESSAGE_ID' => 'm1', 'HTTP_X_ATTEMPT' => '1'], [], '', $this->emitter);
    }

    /**
     * @return iterable<string, array{callable(Job): void, int, array<string, string>}>
     */
    public static function answers(): iterable
    {
        yield 'done' => [static fn (Job $j) => $j->done(), 200, []];
        yield 'retry' => [static fn (Job $j) => $j->retry(), 500, []];
        yield 'reject' => [static fn (Job $j) => $j->reject(), 400, []];
        yield 'run again in 30 s' => [static fn (Job $j) => $j->runAgainIn(30), 503, ['Fpmq-Retry-In' => '30']];
        yield 'run again at once' => [static fn (Job $j) => $j->runAgainIn(0), 503, ['Fpmq-Retry-In' => '0']];
        yield 'fail' => [static fn (Job $j) => $j->fail('no such user 42'), 422, ['Fpmq-Fail' => 'no such user 42']];
        yield 'max attempts alone' => [
            static fn (Job $j) => $j->withMaxAttempts(10),
            0,
            ['Fpmq-Max-Attempts' => '10'],
        ];
        yield 'max attempts and run again' => [
            static fn (Job $j) => $j->withMaxAttempts(1000)->runAgainIn(604800),
            503,
            ['Fpmq-Max-Attempts' => '1000', 'Fpmq-Retry-In' => '604800'],
        ];
        yield 'the last answer wins: fail after run again' => [
            static function (Job $j): void {
                $j->runAgainIn(5);
                $j->fail('gone');
            },
            422,
            ['Fpmq-Fail' => 'gone'],
        ];
        yield 'the last answer wins: done after fail, max attempts kept' => [
            static function (Job $j): void {
                $j->withMaxAttempts(1)->fail('gone');
                $j->done();
            },
            200,
            ['Fpmq-Max-Attempts' => '1'],
        ];
        yield 'the last answer wins: run again after fail' => [
            static function (Job $j): void {
                $j->fail('gone');
                $j->runAgainIn(7);
            },
            503,
            ['Fpmq-Retry-In' => '7'],
        ];
    }

    /**
     * @dataProvider answers
     * @param callable(Job): void $answer
     * @param int $status 0 for none set
     * @param array<string, string> $headers
     */
    public function testAnswer(callable $answer, int $status, array $headers): void
    {
        $answer($this->job);
        self::assertSame($status === 0 ? null : $status, $this->emitter->getStatus());
        self::assertSame($headers, $this->emitter->getHeaders());
    }

    public function testHeaderNamesAreTheContracts(): void
    {
        self::assertSame('Fpmq-Retry-In', Job::HEADER_RETRY_IN);
        self::assertSame('Fpmq-Fail', Job::HEADER_FAIL);
        self::assertSame('Fpmq-Max-Attempts', Job::HEADER_MAX_ATTEMPTS);
    }

    /**
     * @return iterable<string, array{callable(Job): mixed, string}>
     */
    public static function badArguments(): iterable
    {
        yield 'negative delay' => [static fn (Job $j) => $j->runAgainIn(-1), 'needs 0 seconds or more, not -1'];
        yield 'empty reason' => [static fn (Job $j) => $j->fail(''), 'fail needs a reason'];
        yield 'blank reason' => [static fn (Job $j) => $j->fail(" \r\n\t"), 'fail needs a reason'];
        yield '0 attempts' => [static fn (Job $j) => $j->withMaxAttempts(0), 'needs 1 to 1000 attempts, not 0'];
        yield '1001 attempts' => [static fn (Job $j) => $j->withMaxAttempts(1001), '1 to 1000 attempts, not 1001'];
        yield 'negative attempts' => [static fn (Job $j) => $j->withMaxAttempts(-3), '1 to 1000 attempts, not -3'];
    }

    /**
     * @dataProvider badArguments
     * @param callable(Job): mixed $answer
     */
    public function testBadArgumentAnswersNothing(callable $answer, string $message): void
    {
        try {
            $answer($this->job);
            self::fail('no exception');
        } catch (\InvalidArgumentException $e) {
            self::assertStringContainsString($message, $e->getMessage());
        }
        self::assertNull($this->emitter->getStatus());
        self::assertSame([], $this->emitter->getHeaders());
    }

    public function testFailReasonIsOneHeaderLine(): void
    {
        $this->job->fail("  line one\r\nline two\x00\x7f ");
        self::assertSame('line one  line two', $this->emitter->getHeaders()['Fpmq-Fail']);
    }

    public function testFailReasonIsCutAtACharacter(): void
    {
        // 1023 bytes, then a 2-byte character that would end past the limit.
        $this->job->fail(str_repeat('a', 1023) . 'é and more');
        self::assertSame(str_repeat('a', 1023), $this->emitter->getHeaders()['Fpmq-Fail']);

        $this->job->fail(str_repeat('a', 1022) . 'é and more');
        self::assertSame(str_repeat('a', 1022) . 'é', $this->emitter->getHeaders()['Fpmq-Fail']);

        $this->job->fail(str_repeat('b', 1024));
        self::assertSame(str_repeat('b', 1024), $this->emitter->getHeaders()['Fpmq-Fail']);
    }
}
