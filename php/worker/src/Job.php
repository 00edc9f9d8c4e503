<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Job is the job a worker script runs, read from the CGI params the fpmq
 * daemon sets ($_SERVER), the request body and $_POST, and the way the
 * script answers it. services/daemon/README.md ("What the worker sees")
 * documents each param; this class gives them types.
 *
 * Reading: each accessor parses its param when called, so a script pays
 * only for what it reads, and a param that is missing or malformed throws
 * an InvalidParamException naming it only when it is read. Params the
 * message may lack (the job's name, the deadline, ...) are null or empty
 * instead.
 *
 * Answering: done(), retry(), runAgainIn(), fail() and reject() set the
 * response's status and the Fpmq-* headers of the worker contract; the one
 * called last wins. withMaxAttempts() sets the job's number of attempts
 * alongside any of them. A script that answers nothing answers done (200),
 * unless PHP reports a fatal error.
 */
final class Job
{
    /** The answer header that runs the job again in N seconds. */
    public const HEADER_RETRY_IN = 'Fpmq-Retry-In';

    /** The answer header that dead-letters the job at once, with its text as the reason. */
    public const HEADER_FAIL = 'Fpmq-Fail';

    /** The answer header that sets how many attempts the job gets in all. */
    public const HEADER_MAX_ATTEMPTS = 'Fpmq-Max-Attempts';

    /** The most attempts Fpmq-Max-Attempts may give a job. */
    public const MAX_ATTEMPTS_LIMIT = 1000;

    /**
     * The longest reason fail() sends, in bytes: the daemon keeps no more of
     * an error (x-fpmq-last-error), and a long header would crowd the
     * response's header block.
     */
    public const MAX_REASON_BYTES = 1024;

    /** What HTTP_X_FPMQ_OMITTED_HEADERS lists when HTTP_X_FPMQ_MESSAGE was left out. */
    private const OMITTED_MESSAGE = 'x-fpmq-message';

    private ?Message $message = null;

    private ?string $body = null;

    /**
     * @param array<array-key, mixed> $server the CGI params, as $_SERVER
     * @param array<array-key, mixed> $post the form fields, as $_POST
     * @param \Closure(): string $readBody reads the request body, once
     */
    private function __construct(
        private readonly array $server,
        private readonly array $post,
        private readonly \Closure $readBody,
        private readonly HeaderEmitter $emitter,
    ) {
    }

    /**
     * fromGlobals returns the job of the current request under php-fpm:
     * $_SERVER, $_POST, the body from php://input (read when body() is
     * first called), answering with PHP's http_response_code() and header().
     */
    public static function fromGlobals(): self
    {
        return new self($_SERVER, $_POST, static function (): string {
            $body = file_get_contents('php://input');
            return $body === false ? '' : $body;
        }, new PhpHeaderEmitter());
    }

    /**
     * fromArrays returns a job built from the given inputs instead of the
     * request's, for tests and for bridges that have them already.
     *
     * @param array<array-key, mixed> $server the CGI params, as $_SERVER has them
     * @param array<array-key, mixed> $post the form fields, as $_POST has them
     * @param string $body the request body, as php://input has it
     * @param HeaderEmitter|null $emitter where answers go: PHP's header() when null;
     *        a RecordingHeaderEmitter in tests
     */
    public static function fromArrays(
        array $server,
        array $post = [],
        string $body = '',
        ?HeaderEmitter $emitter = null,
    ): self {
        return new self($server, $post, static fn (): string => $body, $emitter ?? new PhpHeaderEmitter());
    }

    /**
     * id returns the job's identity (HTTP_X_MESSAGE_ID): the same on every
     * attempt and every copy the daemon makes, so deduplicate on it.
     *
     * @throws InvalidParamException when it is missing
     */
    public function id(): string
    {
        $id = $this->param('HTTP_X_MESSAGE_ID');
        if ($id === null || $id === '') {
            throw new InvalidParamException('HTTP_X_MESSAGE_ID', 'missing: the daemon sets it on every job');
        }
        return $id;
    }

    /** name returns the job's name (HTTP_X_JOB_NAME, the AMQP type), '' when it has none. */
    public function name(): string
    {
        return $this->param('HTTP_X_JOB_NAME') ?? '';
    }

    /**
     * attempt returns which attempt this is (HTTP_X_ATTEMPT): 1 on the first.
     *
     * @throws InvalidParamException when it is missing or not a whole number from 1
     */
    public function attempt(): int
    {
        $attempt = $this->intParam('HTTP_X_ATTEMPT');
        if ($attempt === null) {
            throw new InvalidParamException('HTTP_X_ATTEMPT', 'missing: the daemon sets it on every job');
        }
        return $attempt;
    }

    /**
     * maxAttempts returns how many attempts the job gets in all
     * (HTTP_X_MAX_ATTEMPTS: the route's MAX_ATTEMPTS, or the job's own
     * limit, see withMaxAttempts), or null when the daemon does not say.
     *
     * @throws InvalidParamException when it is not a whole number from 1
     */
    public function maxAttempts(): ?int
    {
        return $this->intParam('HTTP_X_MAX_ATTEMPTS');
    }

    /**
     * isLastAttempt says whether a failure of this attempt dead-letters the
     * job (attempt() has reached maxAttempts()); false when the daemon does
     * not say how many attempts there are.
     *
     * @throws InvalidParamException when either param is malformed
     */
    public function isLastAttempt(): bool
    {
        $max = $this->maxAttempts();
        return $max !== null && $this->attempt() >= $max;
    }

    /**
     * deadline returns when this attempt's time is up (HTTP_X_DEADLINE), in
     * UTC with milliseconds, or null when the daemon gives none: stop
     * cleanly before it.
     *
     * @throws InvalidParamException when it is not Unix seconds
     */
    public function deadline(): ?\DateTimeImmutable
    {
        $seconds = $this->deadlineTimestamp();
        if ($seconds === null) {
            return null;
        }
        $time = \DateTimeImmutable::createFromFormat('U.u', sprintf('%.6F', $seconds));
        if ($time === false) {
            throw new InvalidParamException('HTTP_X_DEADLINE', 'not a time PHP can represent');
        }
        return $time;
    }

    /**
     * deadlineTimestamp returns the deadline as Unix seconds with a
     * fraction (1764434000.25), to compare with microtime(true); null when
     * the daemon gives none.
     *
     * @throws InvalidParamException when it is not Unix seconds
     */
    public function deadlineTimestamp(): ?float
    {
        $value = $this->param('HTTP_X_DEADLINE');
        if ($value === null || $value === '') {
            return null;
        }
        if (preg_match('/^[0-9]+(\.[0-9]+)?$/D', $value) !== 1) {
            throw new InvalidParamException(
                'HTTP_X_DEADLINE',
                "\"{$value}\" is not Unix seconds such as 1764434000.250",
            );
        }
        return (float) $value;
    }

    /**
     * secondsLeft returns the seconds from $now (microtime(true) when null)
     * to the deadline, negative once it has passed; null without a deadline.
     *
     * @throws InvalidParamException when the deadline is malformed
     */
    public function secondsLeft(?float $now = null): ?float
    {
        $deadline = $this->deadlineTimestamp();
        return $deadline === null ? null : $deadline - ($now ?? microtime(true));
    }

    /** queue returns the queue the job was consumed from (HTTP_X_QUEUE), '' when the daemon does not say. */
    public function queue(): string
    {
        return $this->param('HTTP_X_QUEUE') ?? '';
    }

    /**
     * redelivered says whether RabbitMQ delivered this copy before
     * (HTTP_X_REDELIVERED), after a crash or a requeue: an earlier run may
     * have done part of the work.
     */
    public function redelivered(): bool
    {
        return $this->param('HTTP_X_REDELIVERED') === '1';
    }

    /**
     * contentType returns the message's content type (HTTP_X_CONTENT_TYPE),
     * '' when it has none. In raw mode CONTENT_TYPE is the same, or
     * application/octet-stream; in form mode the body the script gets is
     * always form-encoded.
     */
    public function contentType(): string
    {
        return $this->param('HTTP_X_CONTENT_TYPE') ?? '';
    }

    /**
     * message returns the message's properties and headers, losslessly,
     * decoded from HTTP_X_FPMQ_MESSAGE on the first call.
     *
     * @throws MessageOmittedException when the daemon left it out as too large
     * @throws InvalidParamException when it is missing or malformed
     */
    public function message(): Message
    {
        if ($this->message !== null) {
            return $this->message;
        }
        $json = $this->param(Message::PARAM);
        if ($json === null) {
            if (in_array(self::OMITTED_MESSAGE, $this->omittedHeaders(), true)) {
                throw new MessageOmittedException(
                    'fpmq: ' . Message::PARAM . ' was left out as larger than a FastCGI param may be:'
                    . ' read the scalar headers from HTTP_X_HEADER_*'
                );
            }
            throw new InvalidParamException(Message::PARAM, 'missing: the daemon sets it on every job');
        }
        return $this->message = Message::fromJson($json);
    }

    /**
     * properties returns the message's AMQP properties (see message()).
     *
     * @throws MessageOmittedException
     * @throws InvalidParamException
     */
    public function properties(): Properties
    {
        return $this->message()->properties;
    }

    /**
     * headers returns the message's AMQP headers, names, nested tables and
     * arrays as published (see message() and Table).
     *
     * @throws MessageOmittedException
     * @throws InvalidParamException
     */
    public function headers(): Table
    {
        return $this->message()->headers;
    }

    /**
     * header returns the header $name as published, or $default when the
     * message has none of that name (see headers()).
     *
     * @throws MessageOmittedException
     * @throws InvalidParamException
     */
    public function header(string $name, mixed $default = null): mixed
    {
        return $this->headers()->get($name, $default);
    }

    /**
     * omittedHeaders returns what HTTP_X_FPMQ_OMITTED_HEADERS lists: the
     * names of headers left out of the params as too large
     * (x-fpmq-message for HTTP_X_FPMQ_MESSAGE itself), or, when even the
     * list was too long, one entry such as "12 headers".
     *
     * @return list<string>
     */
    public function omittedHeaders(): array
    {
        $list = $this->param('HTTP_X_FPMQ_OMITTED_HEADERS') ?? '';
        return $list === '' ? [] : explode(',', $list);
    }

    /**
     * body returns the request body as php://input has it: in raw mode
     * (REQUEST_BODY=raw) the message's body unchanged.
     */
    public function body(): string
    {
        return $this->body ??= ($this->readBody)();
    }

    /**
     * fields returns the form fields, as $_POST has them: in form mode (the
     * default) the fields of the message's JSON object.
     *
     * @return array<array-key, mixed>
     */
    public function fields(): array
    {
        return $this->post;
    }

    /**
     * param returns the CGI param $name as $_SERVER has it (such as
     * HTTP_X_TIMESTAMP or HTTP_X_HEADER_TENANT), or null when it is not
     * set or not a string.
     */
    public function param(string $name): ?string
    {
        $value = $this->server[$name] ?? null;
        return is_string($value) ? $value : null;
    }

    /**
     * done answers that the job succeeded (200): the daemon acks it.
     *
     * @throws HeadersSentException when output has started already
     */
    public function done(): void
    {
        $this->answer(200);
    }

    /**
     * retry answers that this attempt failed (500): the daemon runs the job
     * again after the route's backoff, or dead-letters it when its attempts
     * are spent (attempts-exhausted).
     *
     * @throws HeadersSentException when output has started already
     */
    public function retry(): void
    {
        $this->answer(500);
    }

    /**
     * runAgainIn answers that this attempt failed and the job is to run
     * again in $seconds (Fpmq-Retry-In, with 503), instead of after the
     * route's backoff; the wait is held in RabbitMQ. When the job's attempts
     * are spent it is dead-lettered as any failure is. The daemon takes 0 to
     * its DELAY_MAX (168 h by default); it ignores a longer delay with a
     * warning and retries after its backoff.
     *
     * @throws \InvalidArgumentException when $seconds is negative
     * @throws HeadersSentException when output has started already
     */
    public function runAgainIn(int $seconds): void
    {
        if ($seconds < 0) {
            throw new \InvalidArgumentException("fpmq: runAgainIn needs 0 seconds or more, not {$seconds}");
        }
        $this->answer(503, self::HEADER_RETRY_IN, (string) $seconds);
    }

    /**
     * fail answers that the job can never succeed (Fpmq-Fail, with 422): the
     * daemon dead-letters it at once with the reason failed and $reason as
     * x-fpmq-last-error. Control characters in $reason become spaces, and
     * it is cut to MAX_REASON_BYTES (at a UTF-8 character's boundary).
     *
     * @throws \InvalidArgumentException when $reason is empty or blank
     * @throws HeadersSentException when output has started already
     */
    public function fail(string $reason): void
    {
        $text = trim((string) preg_replace('/[\x00-\x1F\x7F]/', ' ', $reason));
        if ($text === '') {
            throw new \InvalidArgumentException('fpmq: fail needs a reason');
        }
        $this->answer(422, self::HEADER_FAIL, self::cut($text, self::MAX_REASON_BYTES));
    }

    /**
     * reject answers 400 without a reason: the daemon dead-letters the job
     * at once as rejected, as it does for any 4xx. fail() records why;
     * reject() is the answer of scripts written before it.
     *
     * @throws HeadersSentException when output has started already
     */
    public function reject(): void
    {
        $this->answer(400);
    }

    /**
     * withMaxAttempts sets how many attempts the job gets in all, those run
     * already included (Fpmq-Max-Attempts), instead of the route's
     * MAX_ATTEMPTS; the daemon keeps it with the job's later copies. It goes
     * with any other answer, and returns $this to chain one:
     * $job->withMaxAttempts(10)->runAgainIn(60). The daemon never gives a
     * job fewer attempts than it ran already plus the one runAgainIn asks for.
     *
     * @throws \InvalidArgumentException when $attempts is not 1 to 1000
     * @throws HeadersSentException when output has started already
     */
    public function withMaxAttempts(int $attempts): self
    {
        if ($attempts < 1 || $attempts > self::MAX_ATTEMPTS_LIMIT) {
            throw new \InvalidArgumentException(
                'fpmq: withMaxAttempts needs 1 to ' . self::MAX_ATTEMPTS_LIMIT . " attempts, not {$attempts}"
            );
        }
        $this->emitter->header(self::HEADER_MAX_ATTEMPTS, (string) $attempts);
        return $this;
    }

    /**
     * answer sets $status, and $header to $value when given, removing the
     * header of any other answer given before.
     */
    private function answer(int $status, ?string $header = null, string $value = ''): void
    {
        $this->emitter->status($status);
        foreach ([self::HEADER_RETRY_IN, self::HEADER_FAIL] as $other) {
            if ($other !== $header) {
                $this->emitter->remove($other);
            }
        }
        if ($header !== null) {
            $this->emitter->header($header, $value);
        }
    }

    /**
     * intParam returns the param $name as a whole number from 1, or null
     * when it is not set.
     *
     * @throws InvalidParamException when it is something else
     */
    private function intParam(string $name): ?int
    {
        $value = $this->param($name);
        if ($value === null || $value === '') {
            return null;
        }
        if (preg_match('/^[1-9][0-9]{0,17}$/D', $value) !== 1) {
            throw new InvalidParamException($name, "\"{$value}\" is not a whole number from 1");
        }
        return (int) $value;
    }

    /** cut returns $text cut to at most $bytes bytes, never inside a UTF-8 character. */
    private static function cut(string $text, int $bytes): string
    {
        if (strlen($text) <= $bytes) {
            return $text;
        }
        // Back off from continuation bytes (10xxxxxx) to a character's start.
        $end = $bytes;
        while ($end > 0 && (ord($text[$end]) & 0xC0) === 0x80) {
            $end--;
        }
        return substr($text, 0, $end);
    }
}
