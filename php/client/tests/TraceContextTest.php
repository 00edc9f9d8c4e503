<?php

declare(strict_types=1);

namespace Fpmq\Tests;

use Fpmq\TraceContext;
use PHPUnit\Framework\TestCase;

final class TraceContextTest extends TestCase
{
    private const VALID = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

    /** @return array<string, array{string, bool}> */
    public static function traceparents(): array
    {
        return [
            'valid' => [self::VALID, true],
            'not sampled' => ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00', true],
            'a later version, longer' => ['cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more', true],
            'empty' => ['', false],
            'upper-case hex' => ['00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', false],
            'all-zero trace id' => ['00-00000000000000000000000000000000-b7ad6b7169203331-01', false],
            'all-zero span id' => ['00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', false],
            'version ff' => ['ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', false],
            'version 00, too long' => [self::VALID . '-more', false],
            'short span id' => ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b71-01', false],
            'a newline at the end' => [self::VALID . "\n", false],
        ];
    }

    /** @dataProvider traceparents */
    public function testValid(string $traceparent, bool $valid): void
    {
        self::assertSame($valid, TraceContext::valid($traceparent));
        if (!$valid) {
            $this->expectException(\InvalidArgumentException::class);
        }
        self::assertSame($traceparent, (new TraceContext($traceparent))->traceparent);
    }

    public function testATracestateMustBeShortAndPrintable(): void
    {
        self::assertSame('rojo=00f067aa0ba902b7', (new TraceContext(self::VALID, 'rojo=00f067aa0ba902b7'))->tracestate);
        $this->expectException(\InvalidArgumentException::class);
        new TraceContext(self::VALID, "a=b\r\nx=y");
    }

    public function testFromServer(): void
    {
        $trace = TraceContext::fromServer(['HTTP_TRACEPARENT' => self::VALID, 'HTTP_TRACESTATE' => 'a=b']);
        self::assertNotNull($trace);
        self::assertSame([self::VALID, 'a=b'], [$trace->traceparent, $trace->tracestate]);
        self::assertNull(TraceContext::fromServer([]));
        self::assertNull(TraceContext::fromServer(['HTTP_TRACEPARENT' => 'garbage']));
        // A tracestate too long to keep is dropped; the trace goes on.
        $long = str_repeat('a', 600);
        $trace = TraceContext::fromServer(['HTTP_TRACEPARENT' => self::VALID, 'HTTP_TRACESTATE' => $long]);
        self::assertSame('', $trace?->tracestate);
    }

    public function testFromCarrier(): void
    {
        $trace = TraceContext::fromCarrier(['traceparent' => self::VALID]);
        self::assertSame([self::VALID, ''], [$trace?->traceparent, $trace?->tracestate]);
        self::assertNull(TraceContext::fromCarrier(['traceparent' => 42]));
    }
}
