<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Symfony\Component\Messenger\Bridge\Amqp\Transport\AmqpStamp;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Middleware\MiddlewareInterface;
use Symfony\Component\Messenger\Middleware\StackInterface;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;

/**
 * MessageIdMiddleware gives every message the application sends a message
 * id of its own: a random UUID (version 4) in the AMQP property message_id,
 * through an AmqpStamp, which Symfony's AMQP transport publishes with. An
 * AmqpStamp that already names a message_id is kept as it is, and a message
 * being handled (it has a ReceivedStamp) is left alone.
 *
 * Symfony's AMQP transport sets no message id, so the fpmq daemon would
 * identify such a message by the SHA-256 of its body, which two messages
 * with equal bodies share: with this middleware each message has its own
 * identity, which handlers see as FpmqReceivedStamp::$jobId and may
 * deduplicate on. Add it to each bus that sends to an fpmq transport
 * (framework.messenger.buses.<bus>.middleware).
 */
final class MessageIdMiddleware implements MiddlewareInterface
{
    public function handle(Envelope $envelope, StackInterface $stack): Envelope
    {
        if ($envelope->last(ReceivedStamp::class) === null) {
            $amqp = $envelope->last(AmqpStamp::class);
            $attributes = $amqp instanceof AmqpStamp ? $amqp->getAttributes() : [];
            if (($attributes['message_id'] ?? '') === '') {
                $envelope = $envelope->with(AmqpStamp::createWithAttributes(['message_id' => self::uuid()], $amqp));
            }
        }
        return $stack->next()->handle($envelope, $stack);
    }

    /** uuid returns a random UUID, version 4 (RFC 9562), in its 36-character text form. */
    public static function uuid(): string
    {
        $bytes = random_bytes(16);
        $bytes[6] = chr((ord($bytes[6]) & 0x0f) | 0x40);
        $bytes[8] = chr((ord($bytes[8]) & 0x3f) | 0x80);
        return vsprintf('%s%s-%s-%s-%s-%s%s%s', str_split(bin2hex($bytes), 4));
    }
}
