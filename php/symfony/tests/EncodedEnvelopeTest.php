<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests;

use Fpmq\Symfony\EncodedEnvelope;
use Fpmq\Symfony\Tests\Fixtures\Ping;
use Fpmq\Symfony\Tests\Fixtures\TagStamp;
use Fpmq\Worker\Job;
use Fpmq\Worker\RecordingHeaderEmitter;
use PHPUnit\Framework\TestCase;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Stamp\BusNameStamp;
use Symfony\Component\Messenger\Stamp\DelayStamp;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Transport\Serialization\Serializer;

/** The encoded envelope rebuilt from a job, as Messenger's AMQP receiver hands it to a serializer. */
final class EncodedEnvelopeTest extends TestCase
{
    public function testSymfonySerializerHeadersComeBackUnderTheirNames(): void
    {
        $serializer = Serializer::create();
        $stamp = new TagStamp('trace', ['id' => 'abc', 'hops' => [1, 2], 'tenant' => ['name' => 'acme']]);
        $stamps = [$stamp, new BusNameStamp('bus'), new DelayStamp(5)];
        $encoded = $serializer->encode(new Envelope(new Ping('p-1'), $stamps));
        // AmqpSender moves Content-Type into the content_type property.
        unset($encoded['headers']['Content-Type']);

        // The daemon adds its own headers on later attempts, and RabbitMQ
        // adds x-death when a delay queue dead-letters the message.
        $published = $encoded['headers'] + ['x-fpmq-attempt' => 2, 'x-death' => [['count' => 1, 'queue' => 'delay']]];
        $rebuilt = EncodedEnvelope::fromJob(Fixtures\Jobs::job($encoded['body'], $published));

        self::assertSame($encoded['body'], $rebuilt['body']);
        self::assertSame($published, $rebuilt['headers']);
        self::assertSame(Ping::class, $rebuilt['headers']['type']);
        self::assertArrayHasKey('X-Message-Stamp-' . TagStamp::class, $rebuilt['headers']);

        $envelope = $serializer->decode($rebuilt);
        self::assertEquals(new Ping('p-1'), $envelope->getMessage());
        self::assertEquals($stamp, $envelope->last(TagStamp::class));
        self::assertSame('bus', $envelope->last(BusNameStamp::class)?->getBusName());
        self::assertSame(5, $envelope->last(DelayStamp::class)?->getDelay());
    }

    public function testPhpSerializerNeedsNoHeaders(): void
    {
        $serializer = new PhpSerializer();
        $stamp = new TagStamp('trace', ['id' => "é\0\x01"]);
        $encoded = $serializer->encode(new Envelope(new Ping('p-2'), [$stamp]));

        $rebuilt = EncodedEnvelope::fromJob(Fixtures\Jobs::job($encoded['body']));

        self::assertSame(['body' => $encoded['body'], 'headers' => []], $rebuilt);
        self::assertEquals($stamp, $serializer->decode($rebuilt)->last(TagStamp::class));
    }

    public function testTypedHeaderValuesBecomeWhatPhpAmqpGives(): void
    {
        $message = '{"headers": {"table": {"bytes": {"bytes": "AAH/"}, "when": {"timestamp": 1700000000},'
            . ' "price": {"decimal": "12.34"}, "list": [{"k": "v"}, [1, 2]]}}}';
        $job = Job::fromArrays(['HTTP_X_FPMQ_MESSAGE' => $message], [], 'body', new RecordingHeaderEmitter());

        $rebuilt = EncodedEnvelope::fromJob($job);

        self::assertSame(
            ['table' => [
                'bytes' => "\x00\x01\xff",
                'when' => 1700000000,
                'price' => '12.34',
                'list' => [['k' => 'v'], [1, 2]],
            ]],
            $rebuilt['headers'],
        );
    }

    public function testHeadersLeftOutAsTooLargeLeaveNone(): void
    {
        $job = Job::fromArrays(
            ['HTTP_X_FPMQ_OMITTED_HEADERS' => 'big,x-fpmq-message'],
            [],
            'the body',
            new RecordingHeaderEmitter(),
        );

        self::assertSame(['body' => 'the body', 'headers' => []], EncodedEnvelope::fromJob($job));
    }
}
