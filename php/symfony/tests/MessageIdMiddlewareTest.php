<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests;

use Fpmq\Symfony\MessageIdMiddleware;
use Fpmq\Symfony\Tests\Fixtures\CapturingMiddleware;
use Fpmq\Symfony\Tests\Fixtures\Ping;
use PHPUnit\Framework\TestCase;
use Symfony\Component\Messenger\Bridge\Amqp\Transport\AmqpStamp;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\MessageBus;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;

/** MessageIdMiddleware on a real MessageBus: what the next middleware (the sender) gets. */
final class MessageIdMiddlewareTest extends TestCase
{
    private const UUID = '/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/';

    public function testEachSentMessageGetsAnIdOfItsOwn(): void
    {
        $first = $this->sent(new Envelope(new Ping('same')));
        $second = $this->sent(new Envelope(new Ping('same')));
        $ids = [$first->getAttributes()['message_id'] ?? '', $second->getAttributes()['message_id'] ?? ''];
        $this->assertMatchesRegularExpression(self::UUID, $ids[0]);
        $this->assertMatchesRegularExpression(self::UUID, $ids[1]);
        $this->assertNotSame($ids[0], $ids[1], 'two messages with equal bodies share an id');
    }

    public function testAnAmqpStampKeepsItsIdAndGainsOneItLacks(): void
    {
        $given = new AmqpStamp('key', \AMQP_NOPARAM, ['message_id' => 'mine', 'priority' => 3]);
        $this->assertSame('mine', $this->sent(new Envelope(new Ping('x'), [$given]))->getAttributes()['message_id']);

        $without = new AmqpStamp('key', \AMQP_NOPARAM, ['priority' => 3]);
        $stamp = $this->sent(new Envelope(new Ping('x'), [$without]));
        $this->assertMatchesRegularExpression(self::UUID, $stamp->getAttributes()['message_id']);
        $this->assertSame(3, $stamp->getAttributes()['priority']);
        $this->assertSame('key', $stamp->getRoutingKey());
    }

    public function testAReceivedMessageIsLeftAlone(): void
    {
        $bus = new MessageBus([new MessageIdMiddleware(), $capture = new CapturingMiddleware()]);
        $bus->dispatch(new Envelope(new Ping('x'), [new ReceivedStamp('async')]));
        $this->assertNull($capture->envelope?->last(AmqpStamp::class));
    }

    /** sent dispatches $envelope through the middleware and returns the AmqpStamp the sender would see. */
    private function sent(Envelope $envelope): AmqpStamp
    {
        $bus = new MessageBus([new MessageIdMiddleware(), $capture = new CapturingMiddleware()]);
        $bus->dispatch($envelope);
        $stamp = $capture->envelope?->last(AmqpStamp::class);
        $this->assertInstanceOf(AmqpStamp::class, $stamp);
        return $stamp;
    }
}
