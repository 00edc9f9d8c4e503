<?php

declare(strict_types=1);

namespace Fpmq\Worker\Tests;

use Fpmq\Worker\Bytes;
use Fpmq\Worker\Decimal;
use Fpmq\Worker\Timestamp;
use PHPUnit\Framework\TestCase;

/** The header values JSON has no type for. */
final class ValuesTest extends TestCase
{
    public function testBytes(): void
    {
        $b = new Bytes("\x00\xffabc");
        self::assertSame("\x00\xffabc", $b->bytes);
        self::assertSame('{"bytes":"AP9hYmM="}', json_encode($b, JSON_THROW_ON_ERROR));
    }

    public function testTimestamp(): void
    {
        $t = new Timestamp(0);
        self::assertSame('1970-01-01T00:00:00+00:00', $t->toDateTime()->format(DATE_ATOM));
        self::assertSame('{"timestamp":0}', json_encode($t, JSON_THROW_ON_ERROR));
        self::assertSame(-86400, (new Timestamp(-86400))->toDateTime()->getTimestamp());
    }

    /**
     * @return iterable<string, array{string}>
     */
    public static function decimals(): iterable
    {
        foreach (['0', '12.34', '-12.34', '0.000000001', '2147483647', '-0.5'] as $d) {
            yield $d => [$d];
        }
    }

    /** @dataProvider decimals */
    public function testDecimal(string $text): void
    {
        $d = new Decimal($text);
        self::assertSame($text, $d->value);
        self::assertSame($text, (string) $d);
        self::assertSame(json_encode(['decimal' => $text]), json_encode($d, JSON_THROW_ON_ERROR));
    }

    /**
     * @return iterable<string, array{string}>
     */
    public static function notDecimals(): iterable
    {
        foreach (['', '1.', '.5', '+1', '1e3', '1,5', ' 1', 'NaN'] as $d) {
            yield "\"{$d}\"" => [$d];
        }
    }

    /** @dataProvider notDecimals */
    public function testNotADecimal(string $text): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('not a decimal number');
        new Decimal($text);
    }
}
