<?php

declare(strict_types=1);

namespace Fpmq;

use PhpAmqpLib\Channel\AMQPChannel;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Connection\AMQPSSLConnection;
use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPExceptionInterface;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

/**
 * Publisher enqueues fpmq jobs, exactly as the Go caller publishes them:
 * persistent messages to the default exchange, routed by queue name, with
 * the mandatory flag, a random message id, a timestamp and the job's name
 * as the AMQP type; a delayed job goes to the delay queue the caller would
 * pick, with the x-fpmq-due header. Each publish waits for the broker's
 * confirm and throws a PublishException unless the broker confirmed the
 * job: so a job whose publish returned is in RabbitMQ, on disk.
 *
 * It declares no queue: the daemon declares the job queue and its delay
 * queues with their arguments, and a job that no queue takes is returned
 * (ReturnedException). One Publisher holds one connection and one channel;
 * it is not meant to be shared between processes.
 */
final class Publisher
{
    /** The daemon's default job queue (AMQP_QUEUE). */
    public const DEFAULT_QUEUE = 'commands';

    /** The daemon's default DELAY_MAX, 168 h in seconds, and the longest delay. */
    public const DEFAULT_DELAY_MAX = 604800;

    /** The header that holds when a delayed job is due, in Unix milliseconds. */
    public const HEADER_DUE = 'x-fpmq-due';

    /**
     * The header that holds when the job was published, in Unix milliseconds:
     * the AMQP timestamp has whole seconds, and the daemon measures a job's
     * wait in the queue from this. RabbitMQ's own timestamp interceptor uses
     * the same name.
     */
    public const HEADER_TIMESTAMP_MS = 'timestamp_in_ms';

    private ?AMQPChannel $channel = null;

    /** @var array<string, bool> confirmed (true) or nacked (false), by message id */
    private array $settled = [];

    /** @var array<string, array{int, string}> reply code and text, by message id */
    private array $returned = [];

    /**
     * @param AbstractConnection $connection an open php-amqplib connection, which the Publisher now owns
     * @param string $queue the job queue: the daemon's AMQP_QUEUE
     * @param int $delayMax the daemon's DELAY_MAX, in seconds: the longest delay queue there is
     * @param float $confirmTimeout seconds to wait for the broker's confirm of one job
     */
    public function __construct(
        private readonly AbstractConnection $connection,
        private readonly string $queue = self::DEFAULT_QUEUE,
        private readonly int $delayMax = self::DEFAULT_DELAY_MAX,
        private readonly float $confirmTimeout = 10.0,
    ) {
        if ($queue === '') {
            throw new \InvalidArgumentException('fpmq: the queue name is empty');
        }
        if ($delayMax < 1) {
            throw new \InvalidArgumentException("fpmq: delayMax must be at least 1 second, not {$delayMax}");
        }
        if (!($confirmTimeout > 0)) {
            throw new \InvalidArgumentException('fpmq: confirmTimeout must be positive');
        }
    }

    /**
     * connect opens a connection to the broker at $url, such as
     * amqp://caller:PASSWORD@rabbitmq:5672/fpmq (percent-encode special
     * characters; the path is the vhost). An amqps:// URL connects over TLS,
     * verifying the broker against the system's CAs or $tls['cafile'], with
     * an optional client certificate in $tls['local_cert'] and
     * $tls['local_pk']. $timeout bounds connecting, each read and write,
     * and the wait for each confirm.
     *
     * @param array<string, mixed> $tls PHP SSL context options for amqps://
     */
    public static function connect(
        string $url,
        string $queue = self::DEFAULT_QUEUE,
        int $delayMax = self::DEFAULT_DELAY_MAX,
        float $timeout = 10.0,
        array $tls = [],
    ): self {
        $u = parse_url($url);
        if ($u === false || !isset($u['scheme'], $u['host']) || !in_array($u['scheme'], ['amqp', 'amqps'], true)) {
            // The URL holds a password: never repeat it.
            throw new \InvalidArgumentException('fpmq: not an AMQP URL (amqp://USER:PASSWORD@HOST:PORT/VHOST)');
        }
        $secure = $u['scheme'] === 'amqps';
        $host = $u['host'];
        $port = $u['port'] ?? ($secure ? 5671 : 5672);
        $user = rawurldecode($u['user'] ?? 'guest');
        $password = rawurldecode($u['pass'] ?? 'guest');
        $path = $u['path'] ?? '';
        $vhost = ($path === '' || $path === '/') ? '/' : rawurldecode(substr($path, 1));
        try {
            if ($secure) {
                $connection = new AMQPSSLConnection(
                    $host,
                    $port,
                    $user,
                    $password,
                    $vhost,
                    $tls + ['verify_peer' => true, 'verify_peer_name' => true],
                    ['connection_timeout' => $timeout, 'read_write_timeout' => $timeout],
                );
            } else {
                $connection = new AMQPStreamConnection(
                    $host,
                    $port,
                    $user,
                    $password,
                    $vhost,
                    false,       // insist
                    'AMQPLAIN',  // login method
                    null,        // login response
                    'en_US',     // locale
                    $timeout,    // connection timeout
                    $timeout,    // read and write timeout
                );
            }
        } catch (AMQPExceptionInterface | \ErrorException $e) {
            throw new \RuntimeException("fpmq: connect to {$host}:{$port}: " . $e->getMessage(), 0, $e);
        }
        return new self($connection, $queue, $delayMax, $timeout);
    }

    /**
     * publish enqueues the job $name whose fields are $payload, a JSON
     * object as the daemon's form mode wants it: the worker reads them in
     * $_POST. It returns the job's message id ($_SERVER['HTTP_X_MESSAGE_ID']
     * in the worker).
     *
     * @param string $name the job's name, the AMQP type ($_SERVER['HTTP_X_JOB_NAME']); '' for none
     * @param array<string, mixed> $payload the job's fields; not a list
     * @param array<string, string|int|float|bool|AMQPTable> $headers AMQP headers ($_SERVER['HTTP_X_HEADER_<NAME>']
     *        for scalars; a nested table only in the message the worker reads); x-fpmq-* names are the daemon's
     * @param int|float $delay seconds before the job may run, 0 to 168 h
     * @param int $priority 0 to 255: see the README's Priorities
     * @param string|null $messageId null for a new random one; the id of a job to publish again
     * @param TraceContext|null $trace the trace the job continues: the traceparent and tracestate headers
     *
     * @throws PublishException when the broker did not confirm the job
     * @throws \JsonException when $payload cannot be encoded
     * @throws \InvalidArgumentException on a bad argument: nothing was published
     */
    public function publish(
        string $name,
        array $payload,
        array $headers = [],
        int|float $delay = 0,
        int $priority = 0,
        ?string $messageId = null,
        ?TraceContext $trace = null,
    ): string {
        if ($payload !== [] && array_is_list($payload)) {
            throw new \InvalidArgumentException('fpmq: a job payload must be a JSON object (string keys), not a list');
        }
        $body = $payload === []
            ? '{}'
            : json_encode(
                $payload,
                JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION,
            );
        return $this->send($name, $body, 'application/json', $headers, $delay, $priority, $messageId, $trace);
    }

    /**
     * publishRaw enqueues the job $name with $body as it is, for a daemon
     * with REQUEST_BODY=raw: the worker reads it from php://input, and
     * $contentType in $_SERVER['CONTENT_TYPE']. The other arguments and the
     * result are publish's.
     *
     * @param array<string, string|int|float|bool|AMQPTable> $headers
     *
     * @throws PublishException when the broker did not confirm the job
     * @throws \InvalidArgumentException on a bad argument: nothing was published
     */
    public function publishRaw(
        string $name,
        string $body,
        string $contentType = 'application/octet-stream',
        array $headers = [],
        int|float $delay = 0,
        int $priority = 0,
        ?string $messageId = null,
        ?TraceContext $trace = null,
    ): string {
        if ($contentType === '' || strlen($contentType) > 255) {
            throw new \InvalidArgumentException('fpmq: the content type must be 1 to 255 bytes');
        }
        return $this->send($name, $body, $contentType, $headers, $delay, $priority, $messageId, $trace);
    }

    /** close closes the channel and the connection. */
    public function close(): void
    {
        try {
            $this->channel?->close();
            $this->connection->close();
        } catch (AMQPExceptionInterface | \ErrorException) {
            // Closing a connection that is gone already is no failure.
        }
        $this->channel = null;
    }

    /**
     * delayQueue returns the queue a job delayed by $seconds goes to, as the
     * Go caller picks it: the delay queue of the largest power of two
     * seconds not above the delay and $delayMax, named with Go's duration
     * syntax (commands.delay.16s, commands.delay.1h8m16s); under a second,
     * the job queue itself.
     */
    public static function delayQueue(
        string $queue,
        int|float $seconds,
        int $delayMax = self::DEFAULT_DELAY_MAX,
    ): string {
        $limit = min($seconds, $delayMax);
        if ($limit < 1) {
            return $queue;
        }
        $bucket = 1;
        while ($bucket * 2 <= $limit) {
            $bucket *= 2;
        }
        return $queue . '.delay.' . self::goDuration($bucket);
    }

    /** goDuration formats whole seconds as Go's time.Duration.String does. */
    private static function goDuration(int $seconds): string
    {
        $h = intdiv($seconds, 3600);
        $m = intdiv($seconds % 3600, 60);
        $s = $seconds % 60;
        if ($h > 0) {
            return "{$h}h{$m}m{$s}s";
        }
        if ($m > 0) {
            return "{$m}m{$s}s";
        }
        return "{$s}s";
    }

    /**
     * @param array<array-key, mixed> $headers
     */
    private function send(
        string $name,
        string $body,
        string $contentType,
        array $headers,
        int|float $delay,
        int $priority,
        ?string $messageId,
        ?TraceContext $trace,
    ): string {
        if (strlen($name) > 255) {
            throw new \InvalidArgumentException('fpmq: a job name is at most 255 bytes');
        }
        if ($priority < 0 || $priority > 255) {
            throw new \InvalidArgumentException("fpmq: priority must be 0 to 255, not {$priority}");
        }
        if (!is_finite((float) $delay) || $delay < 0 || $delay > self::DEFAULT_DELAY_MAX) {
            throw new \InvalidArgumentException('fpmq: delay must be 0 to 604800 seconds (168 h)');
        }
        if ($messageId !== null && ($messageId === '' || strlen($messageId) > 255)) {
            throw new \InvalidArgumentException('fpmq: a message id must be 1 to 255 bytes');
        }
        $table = self::headerTable($headers);

        $now = microtime(true);
        $id = $messageId ?? bin2hex(random_bytes(16));
        $properties = [
            'content_type' => $contentType,
            'delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT,
            'message_id' => $id,
            'timestamp' => (int) $now,
        ];
        if ($name !== '') {
            $properties['type'] = $name;
        }
        if ($priority > 0) {
            $properties['priority'] = $priority;
        }
        $routingKey = $this->queue;
        if ($delay > 0) {
            // The daemon runs the job once due, whichever queue it is in.
            $table->set(self::HEADER_DUE, (int) round(($now + $delay) * 1000), AMQPTable::T_INT_LONGLONG);
            $routingKey = self::delayQueue($this->queue, $delay, $this->delayMax);
        }
        if ($trace !== null) {
            $table->set(TraceContext::HEADER_TRACEPARENT, $trace->traceparent);
            if ($trace->tracestate !== '') {
                $table->set(TraceContext::HEADER_TRACESTATE, $trace->tracestate);
            }
        }
        $table->set(self::HEADER_TIMESTAMP_MS, (int) floor($now * 1000), AMQPTable::T_INT_LONGLONG);
        $properties['application_headers'] = $table;
        $message = new AMQPMessage($body, $properties);

        unset($this->settled[$id], $this->returned[$id]);
        try {
            $channel = $this->channel();
            $channel->basic_publish(
                $message,
                '',          // the default exchange, which routes by queue name
                $routingKey,
                true,        // mandatory: return the job if no queue takes it
            );
            $channel->wait_for_pending_acks_returns($this->confirmTimeout);
        } catch (AMQPTimeoutException $e) {
            // A confirm may still come: this channel is left alone, and
            // the next publish opens another.
            $this->channel = null;
            throw new ConfirmTimeoutException(
                "fpmq: job {$id} not confirmed within {$this->confirmTimeout} s: it may or may not be queued",
                $id,
                $e,
            );
        } catch (AMQPExceptionInterface | \ErrorException $e) {
            // The broker closed the channel (a refused permission) or the
            // connection is lost: either way this channel is done.
            $this->channel = null;
            throw new PublishException("fpmq: job {$id} not confirmed: " . $e->getMessage(), $id, $e);
        }

        $returned = $this->returned[$id] ?? null;
        $settled = $this->settled[$id] ?? null;
        unset($this->settled[$id], $this->returned[$id]);
        if ($returned !== null) {
            [$code, $text] = $returned;
            $hint = $routingKey === $this->queue
                ? "no queue {$routingKey}"
                : "no delay queue {$routingKey}";
            throw new ReturnedException(
                "fpmq: broker returned job {$id} as unroutable: {$code} {$text}: {$hint}:"
                . ' start the daemon first, it declares the queues',
                $id,
                $code,
                $routingKey,
            );
        }
        if ($settled === false) {
            throw new NackedException("fpmq: broker refused job {$id} (nack)", $id);
        }
        if ($settled !== true) {
            $this->channel = null;
            throw new PublishException("fpmq: job {$id} not confirmed", $id);
        }
        return $id;
    }

    /**
     * headerTable checks the caller's headers and makes an AMQP table of them.
     *
     * @param array<array-key, mixed> $headers
     */
    private static function headerTable(array $headers): AMQPTable
    {
        $table = new AMQPTable();
        foreach ($headers as $k => $v) {
            $k = (string) $k;
            if ($k === '' || strlen($k) > 255) {
                throw new \InvalidArgumentException('fpmq: a header name must be 1 to 255 bytes');
            }
            if (str_starts_with(strtolower($k), 'x-fpmq-')) {
                throw new \InvalidArgumentException("fpmq: header {$k}: x-fpmq- headers are the daemon's");
            }
            if (!is_string($v) && !is_int($v) && !is_float($v) && !is_bool($v) && !$v instanceof AMQPTable) {
                throw new \InvalidArgumentException(
                    "fpmq: header {$k}: the value must be a string, int, float, bool or AMQPTable"
                );
            }
            $table->set($k, $v);
        }
        return $table;
    }

    /** channel returns the open channel in confirm mode, opening one if needed. */
    private function channel(): AMQPChannel
    {
        if ($this->channel !== null && $this->channel->is_open()) {
            return $this->channel;
        }
        $channel = $this->connection->channel();
        $channel->set_ack_handler(function (AMQPMessage $m): void {
            $this->settled[(string) $m->get('message_id')] = true;
        });
        $channel->set_nack_handler(function (AMQPMessage $m): void {
            $this->settled[(string) $m->get('message_id')] = false;
        });
        $channel->set_return_listener(
            function (int $code, string $text, string $exchange, string $routingKey, AMQPMessage $m): void {
                $this->returned[(string) $m->get('message_id')] = [$code, $text];
            }
        );
        $channel->confirm_select();
        $this->channel = $channel;
        return $channel;
    }
}
