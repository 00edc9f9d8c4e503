<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Fpmq\Worker\Bytes;
use Fpmq\Worker\Decimal;
use Fpmq\Worker\Job;
use Fpmq\Worker\MessageOmittedException;
use Fpmq\Worker\Table;
use Fpmq\Worker\Timestamp;

/**
 * EncodedEnvelope rebuilds, from an fpmq job, the encoded envelope that
 * Messenger's AMQP receiver hands its serializer: the message's body and
 * its AMQP headers as published, under their exact names (the Symfony
 * serializer reads the class from "type" and the stamps from
 * "X-Message-Stamp-<class>"). The job must come in raw mode
 * (REQUEST_BODY=raw), so that the body is the message's bytes.
 */
final class EncodedEnvelope
{
    private function __construct()
    {
    }

    /**
     * fromJob returns ['body' => the body, 'headers' => the headers], as
     * SerializerInterface::decode() takes them. Header tables become
     * arrays; a byte array its bytes, a timestamp its Unix seconds, a
     * decimal its text. When the daemon left the headers out as too large
     * (HTTP_X_FPMQ_OMITTED_HEADERS), headers is empty: the PHP serializer
     * needs none, and the Symfony serializer then fails to decode.
     *
     * @return array{body: string, headers: array<array-key, mixed>}
     *
     * @throws \Fpmq\Worker\InvalidParamException when the daemon's message param is malformed
     */
    public static function fromJob(Job $job): array
    {
        try {
            $headers = self::plain($job->headers());
        } catch (MessageOmittedException) {
            $headers = [];
        }
        return ['body' => $job->body(), 'headers' => $headers];
    }

    /**
     * plain turns a table into the array php-amqp would give.
     *
     * @return array<array-key, mixed>
     */
    private static function plain(Table $table): array
    {
        $values = [];
        foreach ($table as $name => $value) {
            $values[$name] = self::value($value);
        }
        return $values;
    }

    private static function value(mixed $value): mixed
    {
        return match (true) {
            $value instanceof Table => self::plain($value),
            is_array($value) => array_map(self::value(...), $value),
            $value instanceof Bytes => $value->bytes,
            $value instanceof Timestamp => $value->seconds,
            $value instanceof Decimal => $value->value,
            default => $value,
        };
    }
}
