<?php

declare(strict_types=1);

namespace Fpmq;

/**
 * TraceContext is a W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * the traceparent of the span a job continues, and its tracestate. Publisher
 * writes it in the job's traceparent and tracestate AMQP headers, and the
 * daemon makes each attempt's span a child of it. It is checked on
 * construction: a malformed traceparent throws InvalidArgumentException.
 *
 * With an OpenTelemetry SDK, take it from the propagator:
 *
 *     $carrier = [];
 *     TraceContextPropagator::getInstance()->inject($carrier);
 *     $trace = TraceContext::fromCarrier($carrier);
 *
 * In a worker script, to enqueue a follow-up job in the job's trace:
 * TraceContext::fromServer($_SERVER).
 */
final class TraceContext
{
    /** The AMQP headers, named as the W3C HTTP headers in lower case. */
    public const HEADER_TRACEPARENT = 'traceparent';
    public const HEADER_TRACESTATE = 'tracestate';

    /** The longest tracestate W3C asks to keep, in bytes. */
    private const MAX_TRACESTATE = 512;

    /**
     * @param string $traceparent such as 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
     * @param string $tracestate the vendors' list, such as rojo=00f067aa0ba902b7; '' for none
     *
     * @throws \InvalidArgumentException when $traceparent is not W3C Trace Context or $tracestate is too long
     */
    public function __construct(
        public readonly string $traceparent,
        public readonly string $tracestate = '',
    ) {
        if (!self::valid($traceparent)) {
            throw new \InvalidArgumentException(
                'fpmq: not a W3C traceparent (version-traceid-parentid-flags, lower-case hex): '
                . substr($traceparent, 0, 64)
            );
        }
        if (strlen($tracestate) > self::MAX_TRACESTATE || preg_match('/[^\x20-\x7e]/', $tracestate) === 1) {
            throw new \InvalidArgumentException('fpmq: a tracestate is at most 512 printable ASCII characters');
        }
    }

    /**
     * fromServer returns the trace context a worker script received from
     * the daemon (HTTP_TRACEPARENT, HTTP_TRACESTATE in $_SERVER), or null
     * when there is none or it is malformed.
     *
     * @param array<string, mixed> $server $_SERVER
     */
    public static function fromServer(array $server): ?self
    {
        return self::from($server['HTTP_TRACEPARENT'] ?? null, $server['HTTP_TRACESTATE'] ?? '');
    }

    /**
     * fromCarrier returns the trace context of a propagator's carrier
     * (keys traceparent and tracestate), or null when it has none or a
     * malformed one.
     *
     * @param array<string, mixed> $carrier
     */
    public static function fromCarrier(array $carrier): ?self
    {
        return self::from($carrier[self::HEADER_TRACEPARENT] ?? null, $carrier[self::HEADER_TRACESTATE] ?? '');
    }

    /** valid reports whether $traceparent is a W3C traceparent fpmq can continue. */
    public static function valid(string $traceparent): bool
    {
        $m = [];
        $pattern = '/^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/D';
        if (preg_match($pattern, $traceparent, $m) !== 1) {
            return false;
        }
        [, $version, $traceId, $spanId] = $m;
        if ($version === 'ff' || ($version === '00' && strlen($traceparent) !== 55)) {
            return false;
        }
        return $traceId !== str_repeat('0', 32) && $spanId !== str_repeat('0', 16);
    }

    private static function from(mixed $traceparent, mixed $tracestate): ?self
    {
        if (!is_string($traceparent) || !self::valid($traceparent)) {
            return null;
        }
        $state = is_string($tracestate) ? $tracestate : '';
        try {
            return new self($traceparent, $state);
        } catch (\InvalidArgumentException) {
            return new self($traceparent);
        }
    }
}
