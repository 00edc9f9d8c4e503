<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests;

use Fpmq\Symfony\Outcome;
use Fpmq\Symfony\Runner;
use Fpmq\Symfony\Tests\Fixtures\Jobs;
use Fpmq\Symfony\Tests\Fixtures\Ping;
use Fpmq\Symfony\Tests\Fixtures\PingHandler;
use Fpmq\Symfony\Tests\Fixtures\TagStamp;
use Fpmq\Symfony\Tests\Fixtures\TestKernel;
use Fpmq\Worker\RecordingHeaderEmitter;
use PHPUnit\Framework\TestCase;
use Symfony\Component\Filesystem\Filesystem;
use Symfony\Component\Messenger\Bridge\Amqp\Transport\AmqpStamp;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\MessageBusInterface;
use Symfony\Component\Messenger\Transport\InMemory\InMemoryTransport;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Transport\Serialization\Serializer;

/**
 * FpmqBundle in a kernel with FrameworkBundle: Runner finds the Consumer,
 * each transport decodes with its own serializer, and Messenger's retry and
 * failure listeners send nothing for the transport fpmq runs.
 */
final class BundleTest extends TestCase
{
    private string $dir;

    private TestKernel $kernel;

    private string|false $errorLog = false;

    protected function setUp(): void
    {
        // Runner writes failures to the error log: the daemon's, not the test's.
        $this->errorLog = ini_set('error_log', '/dev/null');
        PingHandler::$handled = [];
        $this->dir = sys_get_temp_dir() . '/fpmq-symfony-test-' . bin2hex(random_bytes(4));
        $this->kernel = new TestKernel($this->dir);
    }

    protected function tearDown(): void
    {
        $this->kernel->shutdown();
        (new Filesystem())->remove($this->dir);
        ini_set('error_log', (string) $this->errorLog);
    }

    public function testEachTransportDecodesWithItsOwnSerializer(): void
    {
        $php = (new PhpSerializer())->encode(new Envelope(new Ping('p-php'), [new TagStamp('t', ['a' => 1])]));
        $json = Serializer::create()->encode(new Envelope(new Ping('p-json'), [new TagStamp('t', ['a' => 1])]));
        unset($json['headers']['Content-Type']);

        $handled = Runner::run($this->kernel, 'async', Jobs::job($php['body']));
        $handledJson = Runner::run($this->kernel, 'async_json', Jobs::job($json['body'], $json['headers']));
        // The JSON message is no PHP-serialized envelope.
        $emitter = new RecordingHeaderEmitter();
        $wrong = Runner::run($this->kernel, 'async', Jobs::job($json['body'], $json['headers'], 1, 5, $emitter));

        self::assertSame(Outcome::HANDLED, $handled->kind);
        self::assertSame(Outcome::HANDLED, $handledJson->kind);
        self::assertSame(['p-php', 'p-json'], PingHandler::$handled);
        self::assertSame(Outcome::UNDECODABLE, $wrong->kind);
        self::assertSame(422, $emitter->getStatus());
        self::assertStringContainsString(PhpSerializer::class, $emitter->getHeaders()['Fpmq-Fail']);
    }

    public function testRetriesAndFailuresAreTheDaemonsNotTheTransports(): void
    {
        $body = (new PhpSerializer())->encode(new Envelope(new Ping('p-fail', 'fail')))['body'];
        $gone = (new PhpSerializer())->encode(new Envelope(new Ping('p-gone', 'unrecoverable')))['body'];
        $retryEmitter = new RecordingHeaderEmitter();

        $retry = Runner::run($this->kernel, 'async', Jobs::job($body, [], 2, 5, $retryEmitter));
        $failed = Runner::run($this->kernel, 'async', Jobs::job($gone));

        self::assertSame([Outcome::RETRY, 2000], [$retry->kind, $retry->delayMs]);
        self::assertSame(['Fpmq-Max-Attempts' => '5', 'Fpmq-Retry-In' => '2'], $retryEmitter->getHeaders());
        self::assertSame(Outcome::FAILED, $failed->kind);
        $container = $this->kernel->getContainer()->get('test.service_container');
        foreach (['async', 'failed'] as $name) {
            $transport = $container->get('messenger.transport.' . $name);
            self::assertInstanceOf(InMemoryTransport::class, $transport);
            self::assertSame([], $transport->getSent(), "Symfony sent the message to the transport {$name}");
        }
    }

    public function testTheBusesMiddlewareMayNameMessageIdMiddlewareAlone(): void
    {
        $this->kernel->boot();
        $container = $this->kernel->getContainer();
        $bus = $container->get('messenger.default_bus');
        self::assertInstanceOf(MessageBusInterface::class, $bus);
        $bus->dispatch(new Ping('sent'));
        $transport = $container->get('test.service_container')->get('messenger.transport.async');
        self::assertInstanceOf(InMemoryTransport::class, $transport);
        $sent = $transport->getSent();
        self::assertCount(1, $sent);
        $stamp = $sent[0]->last(AmqpStamp::class);
        self::assertInstanceOf(AmqpStamp::class, $stamp);
        $id = (string) ($stamp->getAttributes()['message_id'] ?? '');
        self::assertMatchesRegularExpression('/^[0-9a-f-]{36}$/', $id);
    }

    public function testAKernelWithoutTheBundleIsAnError(): void
    {
        $this->expectException(\LogicException::class);
        $this->expectExceptionMessage('add Fpmq\Symfony\FpmqBundle');

        $this->kernel = new TestKernel($this->dir, false);
        Runner::run($this->kernel, 'async', Jobs::job('x'));
    }
}
