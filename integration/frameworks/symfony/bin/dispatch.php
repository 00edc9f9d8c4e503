<?php

// Dispatches Task messages on the application's bus, as its code would,
// which sends them through their transport: php bin/dispatch.php SPEC...,
// each SPEC a JSON object {"id", "behavior", "failures", "transport"
// (async or async_json; routing says async), "delay_ms" (a DelayStamp),
// "trace" ({"trace_id", "baggage"}: a TraceStamp)}. Prints one line per
// message sent.

declare(strict_types=1);

use App\Kernel;
use App\Message\Task;
use App\Stamp\TraceStamp;
use Symfony\Component\Messenger\MessageBusInterface;
use Symfony\Component\Messenger\Stamp\DelayStamp;
use Symfony\Component\Messenger\Stamp\TransportNamesStamp;

require dirname(__DIR__) . '/config/bootstrap.php';

$kernel = new Kernel('prod', false);
$kernel->boot();
$bus = $kernel->getContainer()->get('messenger.default_bus');
assert($bus instanceof MessageBusInterface);
foreach (array_slice($argv, 1) as $json) {
    $spec = json_decode($json, true, 16, JSON_THROW_ON_ERROR);
    $stamps = [];
    if (isset($spec['transport'])) {
        $stamps[] = new TransportNamesStamp([$spec['transport']]);
    }
    if (isset($spec['delay_ms'])) {
        $stamps[] = new DelayStamp((int) $spec['delay_ms']);
    }
    if (isset($spec['trace'])) {
        $stamps[] = new TraceStamp($spec['trace']['trace_id'], $spec['trace']['baggage'] ?? []);
    }
    $task = new Task($spec['id'], $spec['behavior'] ?? 'ok', (int) ($spec['failures'] ?? 0), microtime(true));
    $bus->dispatch($task, $stamps);
    echo "dispatched {$task->id}\n";
}
