<?php

declare(strict_types=1);

namespace Fpmq\Worker\Tests;

use Fpmq\Worker\Bytes;
use Fpmq\Worker\Table;
use PHPUnit\Framework\TestCase;

final class TableTest extends TestCase
{
    private function table(): Table
    {
        return new Table([
            'name' => 'value',
            'null' => null,
            0 => 'zero',
            'inner' => new Table(['list' => [new Table(['a' => 1]), new Bytes('b')]]),
        ]);
    }

    public function testReadsLikeAnArray(): void
    {
        $t = $this->table();
        self::assertSame('value', $t['name']);
        self::assertSame('zero', $t['0']);
        self::assertNull($t['missing']);
        self::assertTrue(isset($t['name']));
        self::assertFalse(isset($t['null']), 'isset of a null value is false, as on an array');
        self::assertFalse(isset($t['missing']));
        self::assertCount(4, $t);
        self::assertSame(1, $t['inner']['list'][0]['a']);
    }

    public function testHasAndGet(): void
    {
        $t = $this->table();
        self::assertTrue($t->has('null'));
        self::assertTrue($t->has('0'));
        self::assertFalse($t->has('missing'));
        self::assertNull($t->get('null', 'default'));
        self::assertSame('default', $t->get('missing', 'default'));
        self::assertSame('zero', $t->get('0'));
    }

    public function testIteratesWithStringNames(): void
    {
        $names = [];
        foreach ($this->table() as $name => $value) {
            $names[] = $name;
        }
        self::assertSame(['name', 'null', '0', 'inner'], $names);
        self::assertSame($names, $this->table()->names());
    }

    public function testToArray(): void
    {
        self::assertEquals(
            ['name' => 'value', 'null' => null, 0 => 'zero', 'inner' => ['list' => [['a' => 1], new Bytes('b')]]],
            $this->table()->toArray(),
        );
    }

    public function testJsonIsAnObjectEvenEmpty(): void
    {
        self::assertSame('{}', json_encode(new Table(), JSON_THROW_ON_ERROR));
        self::assertSame('{"0":"a"}', json_encode(new Table(['a']), JSON_THROW_ON_ERROR));
        self::assertSame(
            '{"name":"value","null":null,"0":"zero","inner":{"list":[{"a":1},{"bytes":"Yg=="}]}}',
            json_encode($this->table(), JSON_THROW_ON_ERROR),
        );
    }

    public function testIsReadOnly(): void
    {
        $t = $this->table();
        try {
            $t['name'] = 'other';
            self::fail('set: no exception');
        } catch (\LogicException $e) {
            self::assertStringContainsString('read-only', $e->getMessage());
        }
        try {
            unset($t['name']);
            self::fail('unset: no exception');
        } catch (\LogicException $e) {
            self::assertStringContainsString('read-only', $e->getMessage());
        }
        self::assertSame('value', $t['name']);
    }
}
