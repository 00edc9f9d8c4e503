<?php

declare(strict_types=1);

namespace Fpmq\Worker\Tests;

use Fpmq\Worker\InvalidParamException;
use Fpmq\Worker\Job;
use Fpmq\Worker\MessageOmittedException;
use Fpmq\Worker\RecordingHeaderEmitter;
use Fpmq\Worker\Table;
use PHPUnit\Framework\TestCase;

final class JobTest extends TestCase
{
    /** A job's params as the daemon sets them, one of each. */
    private const SERVER = [
        'REQUEST_METHOD' => 'POST',
        'CONTENT_TYPE' => 'application/x-www-form-urlencoded',
        'HTTP_X_MESSAGE_ID' => '0f8e2c4a9b7d4e1f8a6c3b2d1e0f9a8b',
        'HTTP_X_JOB_NAME' => 'send-mail',
        'HTTP_X_ATTEMPT' => '2',
        'HTTP_X_MAX_ATTEMPTS' => '5',
        'HTTP_X_DEADLINE' => '1764434000.250',
        'HTTP_X_QUEUE' => 'commands',
        'HTTP_X_REDELIVERED' => '1',
        'HTTP_X_CONTENT_TYPE' => 'application/json',
        'HTTP_X_TIMESTAMP' => '1764433990',
        'HTTP_X_HEADER_TENANT' => 'acme',
        'HTTP_X_FPMQ_MESSAGE' => '{"properties":{"content_type":"application/json","delivery_mode":2,'
            . '"message_id":"0f8e2c4a9b7d4e1f8a6c3b2d1e0f9a8b","timestamp":1764433990,"type":"send-mail"},'
            . '"headers":{"tenant":"acme","laravel":{"attempts":1}}}',
    ];

    public function testAccessors(): void
    {
        $job = Job::fromArrays(self::SERVER, ['number' => '42'], 'number=42', new RecordingHeaderEmitter());

        self::assertSame('0f8e2c4a9b7d4e1f8a6c3b2d1e0f9a8b', $job->id());
        self::assertSame('send-mail', $job->name());
        self::assertSame(2, $job->attempt());
        self::assertSame(5, $job->maxAttempts());
        self::assertFalse($job->isLastAttempt());
        self::assertSame(1764434000.25, $job->deadlineTimestamp());
        self::assertSame('2025-11-29T16:33:20.250+00:00', $job->deadline()?->format('Y-m-d\TH:i:s.vP'));
        self::assertSame(0.25, $job->secondsLeft(1764434000.0));
        self::assertSame('commands', $job->queue());
        self::assertTrue($job->redelivered());
        self::assertSame('application/json', $job->contentType());
        self::assertSame(['number' => '42'], $job->fields());
        self::assertSame('number=42', $job->body());
        self::assertSame('acme', $job->param('HTTP_X_HEADER_TENANT'));
        self::assertSame([], $job->omittedHeaders());

        self::assertSame('application/json', $job->properties()->contentType);
        self::assertSame(2, $job->properties()->deliveryMode);
        self::assertSame('acme', $job->header('tenant'));
        $laravel = $job->header('laravel');
        self::assertInstanceOf(Table::class, $laravel);
        self::assertSame(1, $laravel['attempts']);
        self::assertSame(['tenant', 'laravel'], $job->headers()->names());
        self::assertSame($job->message(), $job->message(), 'decoded once');
    }

    public function testLastAttempt(): void
    {
        $job = Job::fromArrays(['HTTP_X_ATTEMPT' => '5', 'HTTP_X_MAX_ATTEMPTS' => '5']);
        self::assertTrue($job->isLastAttempt());
    }

    /** Params the message or an older daemon may leave out read as null, '' or false. */
    public function testAbsentParams(): void
    {
        $job = Job::fromArrays(['HTTP_X_MESSAGE_ID' => 'm1', 'HTTP_X_ATTEMPT' => '1']);

        self::assertSame('', $job->name());
        self::assertNull($job->maxAttempts());
        self::assertFalse($job->isLastAttempt());
        self::assertNull($job->deadline());
        self::assertNull($job->deadlineTimestamp());
        self::assertNull($job->secondsLeft());
        self::assertSame('', $job->queue());
        self::assertFalse($job->redelivered());
        self::assertSame('', $job->contentType());
        self::assertSame([], $job->fields());
        self::assertSame('', $job->body());
        self::assertNull($job->param('HTTP_X_TIMESTAMP'));
        self::assertSame([], $job->omittedHeaders());
    }

    public function testRedeliveredZero(): void
    {
        self::assertFalse(Job::fromArrays(['HTTP_X_REDELIVERED' => '0'])->redelivered());
    }

    public function testNonStringParamIsAbsent(): void
    {
        self::assertNull(Job::fromArrays(['argv' => ['a']])->param('argv'));
    }

    /**
     * @return iterable<string, array{array<string, string>, callable(Job): mixed, string}>
     */
    public static function malformedParams(): iterable
    {
        yield 'no message id' => [[], static fn (Job $j) => $j->id(), 'HTTP_X_MESSAGE_ID'];
        yield 'empty message id' => [['HTTP_X_MESSAGE_ID' => ''], static fn (Job $j) => $j->id(), 'HTTP_X_MESSAGE_ID'];
        yield 'no attempt' => [[], static fn (Job $j) => $j->attempt(), 'HTTP_X_ATTEMPT'];
        yield 'attempt 0' => [['HTTP_X_ATTEMPT' => '0'], static fn (Job $j) => $j->attempt(), 'HTTP_X_ATTEMPT'];
        yield 'attempt text' => [['HTTP_X_ATTEMPT' => 'two'], static fn (Job $j) => $j->attempt(), 'HTTP_X_ATTEMPT'];
        yield 'attempt negative' => [['HTTP_X_ATTEMPT' => '-1'], static fn (Job $j) => $j->attempt(), 'HTTP_X_ATTEMPT'];
        yield 'attempt overflows' => [
            ['HTTP_X_ATTEMPT' => '99999999999999999999'],
            static fn (Job $j) => $j->attempt(),
            'HTTP_X_ATTEMPT',
        ];
        yield 'max attempts fraction' => [
            ['HTTP_X_MAX_ATTEMPTS' => '2.5'],
            static fn (Job $j) => $j->maxAttempts(),
            'HTTP_X_MAX_ATTEMPTS',
        ];
        yield 'deadline text' => [
            ['HTTP_X_DEADLINE' => 'tomorrow'],
            static fn (Job $j) => $j->deadline(),
            'HTTP_X_DEADLINE',
        ];
        yield 'deadline negative' => [
            ['HTTP_X_DEADLINE' => '-1.5'],
            static fn (Job $j) => $j->deadlineTimestamp(),
            'HTTP_X_DEADLINE',
        ];
        yield 'no message' => [
            ['HTTP_X_MESSAGE_ID' => 'm1'],
            static fn (Job $j) => $j->headers(),
            'HTTP_X_FPMQ_MESSAGE',
        ];
        yield 'malformed JSON' => [
            ['HTTP_X_FPMQ_MESSAGE' => '{"headers":'],
            static fn (Job $j) => $j->header('a'),
            'HTTP_X_FPMQ_MESSAGE',
        ];
    }

    /**
     * @dataProvider malformedParams
     * @param array<string, string> $server
     * @param callable(Job): mixed $read
     */
    public function testMalformedParamNamesIt(array $server, callable $read, string $param): void
    {
        try {
            $read(Job::fromArrays($server));
            self::fail('no exception');
        } catch (InvalidParamException $e) {
            self::assertSame($param, $e->getParam());
            self::assertStringStartsWith("fpmq: {$param}: ", $e->getMessage());
        }
    }

    public function testOmittedMessage(): void
    {
        $job = Job::fromArrays([
            'HTTP_X_MESSAGE_ID' => 'm1',
            'HTTP_X_FPMQ_OMITTED_HEADERS' => 'big,x-fpmq-message',
            'HTTP_X_HEADER_TENANT' => 'acme',
        ]);
        self::assertSame(['big', 'x-fpmq-message'], $job->omittedHeaders());
        self::assertSame('acme', $job->param('HTTP_X_HEADER_TENANT'));
        $this->expectException(MessageOmittedException::class);
        $this->expectExceptionMessage('HTTP_X_FPMQ_MESSAGE was left out');
        $job->headers();
    }

    public function testFromGlobals(): void
    {
        $server = $_SERVER;
        $post = $_POST;
        try {
            $_SERVER = ['HTTP_X_MESSAGE_ID' => 'g1', 'HTTP_X_ATTEMPT' => '3'];
            $_POST = ['number' => '7'];
            $job = Job::fromGlobals();
        } finally {
            $_SERVER = $server;
            $_POST = $post;
        }
        self::assertSame('g1', $job->id());
        self::assertSame(3, $job->attempt());
        self::assertSame(['number' => '7'], $job->fields());
        self::assertSame('', $job->body(), 'php://input of the CLI is empty');
    }
}
