<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Table is an AMQP field table: the message's headers, or a header whose
 * value is itself a table. It is read-only and reads like an array
 * ($table['name'], isset, foreach, count), and it stays an object so that
 * a table is never mistaken for an AMQP array, which reads as a PHP list:
 * an empty table and an empty array, or a table whose names are "0", "1",
 * and an array, stay apart. Values are null, bool, int, float, string,
 * Table, a list of values, Bytes, Timestamp or Decimal. Names are strings,
 * in the order the message has them.
 *
 * @implements \ArrayAccess<string, mixed>
 * @implements \IteratorAggregate<string, mixed>
 */
final class Table implements \ArrayAccess, \IteratorAggregate, \Countable, \JsonSerializable
{
    /** @var array<array-key, mixed> PHP turns names such as "0" into int keys */
    private readonly array $values;

    /**
     * @param array<array-key, mixed> $values the values by name
     */
    public function __construct(array $values = [])
    {
        $this->values = $values;
    }

    /** has says whether the table has the name $name, even with a null value. */
    public function has(string $name): bool
    {
        return array_key_exists($name, $this->values);
    }

    /** get returns the value named $name, or $default when there is none. */
    public function get(string $name, mixed $default = null): mixed
    {
        return array_key_exists($name, $this->values) ? $this->values[$name] : $default;
    }

    /**
     * names returns the table's names, in order.
     *
     * @return list<string>
     */
    public function names(): array
    {
        return array_map('strval', array_keys($this->values));
    }

    /**
     * toArray returns the table as a PHP array, nested tables too (Bytes,
     * Timestamp and Decimal stay objects). It is for code that wants plain
     * arrays; it loses the difference between a table and an array.
     *
     * @return array<array-key, mixed>
     */
    public function toArray(): array
    {
        return self::plain($this->values);
    }

    public function offsetExists(mixed $offset): bool
    {
        // As isset() on an array: a null value does not count.
        return isset($this->values[$offset]);
    }

    public function offsetGet(mixed $offset): mixed
    {
        return $this->values[$offset] ?? null;
    }

    /** @throws \LogicException always: a Table is read-only */
    public function offsetSet(mixed $offset, mixed $value): void
    {
        throw new \LogicException('fpmq: the message\'s headers are read-only');
    }

    /** @throws \LogicException always: a Table is read-only */
    public function offsetUnset(mixed $offset): void
    {
        throw new \LogicException('fpmq: the message\'s headers are read-only');
    }

    /** @return \Generator<string, mixed> */
    public function getIterator(): \Generator
    {
        foreach ($this->values as $name => $value) {
            yield (string) $name => $value;
        }
    }

    public function count(): int
    {
        return count($this->values);
    }

    /** jsonSerialize returns the table as HTTP_X_FPMQ_MESSAGE writes it: a JSON object, even when empty. */
    public function jsonSerialize(): \stdClass
    {
        $object = new \stdClass();
        foreach ($this->values as $name => $value) {
            $object->{(string) $name} = $value;
        }
        return $object;
    }

    /**
     * @param array<array-key, mixed> $values
     * @return array<array-key, mixed>
     */
    private static function plain(array $values): array
    {
        foreach ($values as $name => $value) {
            if ($value instanceof self) {
                $values[$name] = $value->toArray();
            } elseif (is_array($value)) {
                $values[$name] = self::plain($value);
            }
        }
        return $values;
    }
}
