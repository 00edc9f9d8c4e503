<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Message is the job's message as HTTP_X_FPMQ_MESSAGE carries it, every
 * AMQP property and every header, losslessly: tables are Table objects,
 * arrays PHP lists, and the values JSON has no type for are Bytes,
 * Timestamp and Decimal. json_encode() of a Message gives that JSON back.
 */
final class Message implements \JsonSerializable
{
    /** The param that carries the message, as the worker sees it in $_SERVER. */
    public const PARAM = 'HTTP_X_FPMQ_MESSAGE';

    private function __construct(
        public readonly Properties $properties,
        public readonly Table $headers,
    ) {
    }

    /**
     * fromJson decodes HTTP_X_FPMQ_MESSAGE's value:
     * {"properties": {...}, "headers": {...}}; either object may be absent,
     * for none. A one-key object {"bytes": base64}, {"timestamp": integer}
     * or {"decimal": "12.34"} is that typed value; any other object is a
     * Table. (So a header table whose only name is bytes, timestamp or
     * decimal with a value of that shape reads as the typed value: the
     * contract's JSON cannot tell the two apart.)
     *
     * @throws InvalidParamException naming HTTP_X_FPMQ_MESSAGE when $json is not such an object
     */
    public static function fromJson(string $json): self
    {
        try {
            $decoded = json_decode($json, false, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new InvalidParamException(self::PARAM, 'not valid JSON: ' . $e->getMessage(), $e);
        }
        if (!$decoded instanceof \stdClass) {
            throw new InvalidParamException(self::PARAM, 'not a JSON object but ' . get_debug_type($decoded));
        }
        $properties = $decoded->properties ?? new \stdClass();
        $headers = $decoded->headers ?? new \stdClass();
        if (!$properties instanceof \stdClass || !$headers instanceof \stdClass) {
            throw new InvalidParamException(self::PARAM, '"properties" and "headers" must be JSON objects');
        }
        try {
            $properties = Properties::fromArray(get_object_vars($properties));
        } catch (\InvalidArgumentException $e) {
            throw new InvalidParamException(self::PARAM, $e->getMessage(), $e);
        }
        return new self($properties, self::table($headers));
    }

    /** @return array{properties: \stdClass, headers: Table} the message as HTTP_X_FPMQ_MESSAGE writes it */
    public function jsonSerialize(): array
    {
        return ['properties' => (object) $this->properties->toArray(), 'headers' => $this->headers];
    }

    /** table turns a decoded JSON object into a Table, its values decoded too. */
    private static function table(\stdClass $object): Table
    {
        $values = [];
        foreach (get_object_vars($object) as $name => $value) {
            $values[$name] = self::value($value);
        }
        return new Table($values);
    }

    /** value turns one decoded JSON value into a header value. */
    private static function value(mixed $value): mixed
    {
        if (is_array($value)) {
            return array_map(self::value(...), $value);
        }
        if (!$value instanceof \stdClass) {
            return $value;
        }
        $fields = get_object_vars($value);
        if (count($fields) === 1) {
            $typed = self::typed((string) array_key_first($fields), reset($fields));
            if ($typed !== null) {
                return $typed;
            }
        }
        return self::table($value);
    }

    /**
     * typed returns the typed value that the one-key object {$key: $value}
     * stands for, or null when it is a table.
     */
    private static function typed(string $key, mixed $value): Bytes|Timestamp|Decimal|null
    {
        if ($key === 'bytes' && is_string($value)) {
            $bytes = base64_decode($value, true);
            return $bytes === false ? null : new Bytes($bytes);
        }
        if ($key === 'timestamp' && is_int($value)) {
            return new Timestamp($value);
        }
        if ($key === 'decimal' && is_string($value) && preg_match(Decimal::PATTERN, $value) === 1) {
            return new Decimal($value);
        }
        return null;
    }
}
