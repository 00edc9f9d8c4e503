<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests\Fixtures;

use Fpmq\Worker\Job;
use Fpmq\Worker\RecordingHeaderEmitter;

/** Jobs builds the jobs the fpmq daemon would hand a pool script. */
final class Jobs
{
    /**
     * job returns the job of a raw-mode message: $body, and $headers as
     * HTTP_X_FPMQ_MESSAGE carries them (JSON: tables are objects).
     *
     * @param array<string, mixed> $headers the AMQP headers as published
     */
    public static function job(
        string $body,
        array $headers = [],
        int $attempt = 1,
        ?int $maxAttempts = 5,
        ?RecordingHeaderEmitter $emitter = null,
    ): Job {
        $message = json_encode(
            ['properties' => ['delivery_mode' => 2], 'headers' => (object) $headers],
            JSON_THROW_ON_ERROR,
        );
        $server = [
            'HTTP_X_MESSAGE_ID' => 'sha256:' . hash('sha256', $body),
            'HTTP_X_ATTEMPT' => (string) $attempt,
            'HTTP_X_QUEUE' => 'messages',
            'HTTP_X_FPMQ_MESSAGE' => $message,
        ];
        if ($maxAttempts !== null) {
            $server['HTTP_X_MAX_ATTEMPTS'] = (string) $maxAttempts;
        }
        return Job::fromArrays($server, [], $body, $emitter ?? new RecordingHeaderEmitter());
    }
}
