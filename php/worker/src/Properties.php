<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Properties are the message's AMQP properties, as HTTP_X_FPMQ_MESSAGE
 * carries them; a property the message lacks is null. The headers
 * (application_headers) are Job::headers(). toArray() returns them by
 * their AMQP names, as received, including names a later daemon may add.
 */
final class Properties
{
    /** The string properties, by their AMQP names. */
    private const STRINGS = [
        'content_type', 'content_encoding', 'correlation_id', 'reply_to', 'expiration',
        'message_id', 'type', 'user_id', 'app_id',
    ];

    /** The integer properties, by their AMQP names. */
    private const INTEGERS = ['delivery_mode', 'priority', 'timestamp'];

    /**
     * @param array<string, mixed> $all every property by its AMQP name, as received
     */
    private function __construct(
        public readonly ?string $contentType,
        public readonly ?string $contentEncoding,
        public readonly ?int $deliveryMode,
        public readonly ?int $priority,
        public readonly ?string $correlationId,
        public readonly ?string $replyTo,
        public readonly ?string $expiration,
        public readonly ?string $messageId,
        public readonly ?\DateTimeImmutable $timestamp,
        public readonly ?string $type,
        public readonly ?string $userId,
        public readonly ?string $appId,
        private readonly array $all,
    ) {
    }

    /**
     * fromArray takes the properties by their AMQP names, as
     * HTTP_X_FPMQ_MESSAGE's "properties" object holds them: the string
     * properties as strings, delivery_mode, priority and timestamp (Unix
     * seconds) as integers.
     *
     * @param array<string, mixed> $properties
     *
     * @throws \InvalidArgumentException naming the first property of the wrong type
     */
    public static function fromArray(array $properties): self
    {
        foreach ($properties as $name => $value) {
            $want = match (true) {
                in_array($name, self::STRINGS, true) => 'string',
                in_array($name, self::INTEGERS, true) => 'int',
                default => null, // a property this library does not know: kept as it is
            };
            if ($want !== null && $value !== null && get_debug_type($value) !== $want) {
                throw new \InvalidArgumentException("property {$name} is " . get_debug_type($value) . ", not {$want}");
            }
        }
        $p = $properties;
        return new self(
            $p['content_type'] ?? null,
            $p['content_encoding'] ?? null,
            $p['delivery_mode'] ?? null,
            $p['priority'] ?? null,
            $p['correlation_id'] ?? null,
            $p['reply_to'] ?? null,
            $p['expiration'] ?? null,
            $p['message_id'] ?? null,
            isset($p['timestamp']) ? new \DateTimeImmutable('@' . $p['timestamp']) : null,
            $p['type'] ?? null,
            $p['user_id'] ?? null,
            $p['app_id'] ?? null,
            $properties,
        );
    }

    /**
     * toArray returns the properties the message has, by their AMQP names,
     * as received (timestamp in Unix seconds).
     *
     * @return array<string, mixed>
     */
    public function toArray(): array
    {
        return $this->all;
    }
}
