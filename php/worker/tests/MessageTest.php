<?php

declare(strict_types=1);

namespace Fpmq\Worker\Tests;

use Fpmq\Worker\Bytes;
use Fpmq\Worker\Decimal;
use Fpmq\Worker\InvalidParamException;
use Fpmq\Worker\Message;
use Fpmq\Worker\Table;
use Fpmq\Worker\Timestamp;
use PHPUnit\Framework\TestCase;

/** HTTP_X_FPMQ_MESSAGE, decoded losslessly. */
final class MessageTest extends TestCase
{
    /** Every property, and a header of each type, nested. */
    private const JSON = <<<'JSON'
        {"properties": {"content_type": "application/json", "content_encoding": "gzip", "delivery_mode": 2,
          "priority": 5, "correlation_id": "c-1", "reply_to": "replies", "expiration": "60000",
          "message_id": "m-1", "timestamp": 1764434000, "type": "send-mail", "user_id": "caller",
          "app_id": "shop"},
         "headers": {
          "text": "héllo", "yes": true, "no": false, "int": -42, "big": 9007199254740993, "float": 1.5,
          "nothing": null,
          "bytes": {"bytes": "AAEC/w=="},
          "when": {"timestamp": 1764434000},
          "price": {"decimal": "-12.34"},
          "laravel": {"attempts": 2, "tags": ["a", {"bytes": ""}, [1, [2]], {}]},
          "empty table": {}, "empty array": [],
          "numbered table": {"0": "a", "1": "b"}, "list": ["a", "b"],
          "deep": {"a": {"b": {"c": {"decimal": "1"}}}},
          "not bytes": {"bytes": "not base64!"},
          "not a timestamp": {"timestamp": "1764434000"},
          "not a decimal": {"decimal": 12.34},
          "two keys": {"bytes": "AA==", "timestamp": 1}
         }}
        JSON;

    public function testProperties(): void
    {
        $p = Message::fromJson(self::JSON)->properties;
        self::assertSame('application/json', $p->contentType);
        self::assertSame('gzip', $p->contentEncoding);
        self::assertSame(2, $p->deliveryMode);
        self::assertSame(5, $p->priority);
        self::assertSame('c-1', $p->correlationId);
        self::assertSame('replies', $p->replyTo);
        self::assertSame('60000', $p->expiration);
        self::assertSame('m-1', $p->messageId);
        self::assertSame(1764434000, $p->timestamp?->getTimestamp());
        self::assertSame('send-mail', $p->type);
        self::assertSame('caller', $p->userId);
        self::assertSame('shop', $p->appId);
        self::assertCount(12, $p->toArray());
        self::assertSame(1764434000, $p->toArray()['timestamp']);
    }

    public function testAbsentPropertiesAreNull(): void
    {
        $m = Message::fromJson('{"properties": {"message_id": "m-1", "type": null, "x-later": [1]}}');
        self::assertSame('m-1', $m->properties->messageId);
        self::assertNull($m->properties->contentType);
        self::assertNull($m->properties->type);
        self::assertNull($m->properties->timestamp);
        self::assertSame(['message_id' => 'm-1', 'type' => null, 'x-later' => [1]], $m->properties->toArray());
        self::assertCount(0, $m->headers);
    }

    public function testScalarHeaders(): void
    {
        $h = Message::fromJson(self::JSON)->headers;
        self::assertSame('héllo', $h['text']);
        self::assertTrue($h['yes']);
        self::assertFalse($h['no']);
        self::assertSame(-42, $h['int']);
        self::assertSame(9007199254740993, $h['big'], 'an int64 beyond a float\'s precision stays exact');
        self::assertSame(1.5, $h['float']);
        self::assertTrue($h->has('nothing'));
        self::assertNull($h['nothing']);
    }

    public function testTypedHeaders(): void
    {
        $h = Message::fromJson(self::JSON)->headers;

        $bytes = $h['bytes'];
        self::assertInstanceOf(Bytes::class, $bytes);
        self::assertSame("\x00\x01\x02\xff", $bytes->bytes);

        $when = $h['when'];
        self::assertInstanceOf(Timestamp::class, $when);
        self::assertSame(1764434000, $when->seconds);
        self::assertSame('2025-11-29T16:33:20+00:00', $when->toDateTime()->format(DATE_ATOM));

        $price = $h['price'];
        self::assertInstanceOf(Decimal::class, $price);
        self::assertSame('-12.34', $price->value);
        self::assertSame('-12.34', (string) $price);

        $deep = $h['deep'];
        self::assertInstanceOf(Table::class, $deep);
        self::assertEquals(new Decimal('1'), $deep['a']['b']['c']);
    }

    public function testNestedTablesAndArrays(): void
    {
        $h = Message::fromJson(self::JSON)->headers;

        $laravel = $h['laravel'];
        self::assertInstanceOf(Table::class, $laravel);
        self::assertSame(2, $laravel['attempts']);
        $tags = $laravel['tags'];
        self::assertIsArray($tags);
        self::assertTrue(array_is_list($tags));
        self::assertSame('a', $tags[0]);
        self::assertEquals(new Bytes(''), $tags[1]);
        self::assertSame([1, [2]], $tags[2]);
        self::assertEquals(new Table(), $tags[3]);

        // A table and an array stay apart, empty or numbered.
        self::assertInstanceOf(Table::class, $h['empty table']);
        self::assertCount(0, $h['empty table']);
        self::assertSame([], $h['empty array']);
        $numbered = $h['numbered table'];
        self::assertInstanceOf(Table::class, $numbered);
        self::assertSame(['0', '1'], $numbered->names());
        self::assertSame('b', $numbered->get('1'));
        self::assertSame(['a', 'b'], $h['list']);
    }

    public function testObjectsThatAreNotTypedValuesAreTables(): void
    {
        $h = Message::fromJson(self::JSON)->headers;
        foreach (['not bytes', 'not a timestamp', 'not a decimal', 'two keys'] as $name) {
            self::assertInstanceOf(Table::class, $h[$name], $name);
        }
        self::assertSame('not base64!', $h['not bytes']['bytes']);
        self::assertSame(12.34, $h['not a decimal']['decimal']);
    }

    public function testEncodesBackToTheSameJson(): void
    {
        $m = Message::fromJson(self::JSON);
        $flags = JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION;
        self::assertSame(
            json_encode(json_decode(self::JSON, false, 512, JSON_THROW_ON_ERROR), $flags),
            json_encode($m, $flags),
        );
    }

    public function testEmptyObjectMeansNone(): void
    {
        $m = Message::fromJson('{}');
        self::assertSame([], $m->properties->toArray());
        self::assertCount(0, $m->headers);
    }

    /**
     * @return iterable<string, array{string, string}>
     */
    public static function malformed(): iterable
    {
        yield 'empty' => ['', 'not valid JSON: Syntax error'];
        yield 'cut short' => ['{"headers": {"a": ', 'not valid JSON: Syntax error'];
        yield 'invalid UTF-8' => ["{\"headers\": {\"a\": \"\xff\"}}", 'not valid JSON: Malformed UTF-8'];
        yield 'an array' => ['[]', 'not a JSON object but array'];
        yield 'a string' => ['"x"', 'not a JSON object but string'];
        yield 'headers a list' => ['{"headers": []}', '"properties" and "headers" must be JSON objects'];
        yield 'properties a string' => ['{"properties": "x"}', '"properties" and "headers" must be JSON objects'];
        yield 'priority a string' => ['{"properties": {"priority": "5"}}', 'property priority is string, not int'];
        yield 'message id a number' => ['{"properties": {"message_id": 7}}', 'property message_id is int, not string'];
        yield 'timestamp a float' => ['{"properties": {"timestamp": 1.5}}', 'property timestamp is float, not int'];
    }

    /** @dataProvider malformed */
    public function testMalformedNamesTheParam(string $json, string $message): void
    {
        try {
            Message::fromJson($json);
            self::fail('no exception');
        } catch (InvalidParamException $e) {
            self::assertSame('HTTP_X_FPMQ_MESSAGE', $e->getParam());
            self::assertStringStartsWith('fpmq: HTTP_X_FPMQ_MESSAGE: ', $e->getMessage());
            self::assertStringContainsString($message, $e->getMessage());
        }
    }
}
