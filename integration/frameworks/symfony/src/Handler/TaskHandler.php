<?php

declare(strict_types=1);

namespace App\Handler;

use App\Message\Task;
use App\RunLog;
use App\Stamp\TraceStamp;
use Fpmq\Symfony\FpmqReceivedStamp;
use Fpmq\Symfony\Runner;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Exception\RecoverableMessageHandlingException;
use Symfony\Component\Messenger\Exception\UnrecoverableMessageHandlingException;
use Symfony\Component\Messenger\Stamp\ConsumedByWorkerStamp;
use Symfony\Component\Messenger\Stamp\ReceivedStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Worker;

/**
 * TaskHandler records each run in the RunLog, with the stamps it sees, and
 * then does what the task's behaviour says.
 */
final class TaskHandler
{
    public function __invoke(Task $task, ?Envelope $envelope = null): void
    {
        $retries = $envelope === null ? 0 : RedeliveryStamp::getRetryCountFromEnvelope($envelope);
        $received = $envelope?->last(ReceivedStamp::class);
        $trace = $envelope?->last(TraceStamp::class);
        $fpmq = $envelope?->last(FpmqReceivedStamp::class);
        RunLog::write([
            'kind' => 'run',
            'id' => $task->id,
            'behavior' => $task->behavior,
            'dispatched_at' => $task->dispatchedAt,
            'transport' => $received instanceof ReceivedStamp ? $received->getTransportName() : null,
            'consumed_by_worker' => $envelope?->last(ConsumedByWorkerStamp::class) !== null,
            'retries' => $retries,
            'trace' => $trace instanceof TraceStamp
                ? ['trace_id' => $trace->traceId, 'baggage' => $trace->baggage]
                : null,
            'job_id' => $fpmq instanceof FpmqReceivedStamp ? $fpmq->jobId : null,
            'attempt' => $fpmq instanceof FpmqReceivedStamp ? $fpmq->attempt : null,
            // The pool as the bridge's README sets it up: the container's
            // preload file, with what FpmqBundle's PreloadWarmer adds.
            'preloaded' => RunLog::preloaded(self::class, Runner::class, Worker::class),
        ]);
        $failing = $retries < $task->failures;
        match ($task->behavior) {
            'flaky' => $failing ? throw new \RuntimeException("flaky {$task->id} failed at retry {$retries}") : null,
            'recoverable' => $failing
                ? throw new RecoverableMessageHandlingException("recoverable {$task->id} failed at retry {$retries}")
                : null,
            'unrecoverable' => throw new UnrecoverableMessageHandlingException("card declined for {$task->id}"),
            default => null,
        };
    }
}
