<?php

declare(strict_types=1);

namespace Fpmq\Laravel;

/**
 * Payload checks that a message body is a Laravel queue payload before the
 * application spends a boot on it.
 */
final class Payload
{
    /** What a Laravel queue payload is, for the reason of a body that is not one. */
    public const EXPECTED = 'a Laravel queue payload: a JSON object with "job"'
        . ' (a handler such as Illuminate\Queue\CallQueuedHandler@call) and "data",'
        . ' as Laravel\'s queue connections publish it';

    /**
     * problem returns why $body is not a Laravel queue payload (a JSON
     * object whose "job" is a non-empty string and whose "data" is an object
     * or an array), naming what was expected; null when it is one.
     */
    public static function problem(string $body): ?string
    {
        try {
            $payload = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            return 'not ' . self::EXPECTED . '; the body is not JSON (' . $e->getMessage() . ')';
        }
        if (!is_array($payload) || !str_starts_with(ltrim($body), '{')) {
            return 'not ' . self::EXPECTED . '; the body is JSON ' . get_debug_type($payload) . ', not an object';
        }
        $job = $payload['job'] ?? null;
        if (!is_string($job) || $job === '') {
            return 'not ' . self::EXPECTED . '; the object has no "job" string';
        }
        if (!is_array($payload['data'] ?? null)) {
            return 'not ' . self::EXPECTED . '; the object has no "data"';
        }
        return null;
    }

    /**
     * id returns the job's id in a decoded payload: its "uuid", else its
     * "id" (laravel-queue-rabbitmq's payloads), as a string; null when it
     * has neither as a non-empty string or an integer.
     *
     * @param array<mixed> $payload
     */
    public static function id(array $payload): ?string
    {
        foreach (['uuid', 'id'] as $key) {
            $id = $payload[$key] ?? null;
            if ((is_string($id) && $id !== '') || is_int($id)) {
                return (string) $id;
            }
        }
        return null;
    }
}
