<?php
// A worker for the integration tests: the job's "do" field chooses how it
// misbehaves, so each kind of fault php-fpm can produce is tried for real.
// Every run appends one JSON line to /var/log/workers/misbehave.log
// before doing anything else, so the test can count runs.

declare(strict_types=1);

$do = $_POST['do'] ?? (file_get_contents('php://input') !== '' ? 'raw' : 'ok');
$record = [
    'do' => $do,
    'id' => $_SERVER['HTTP_X_MESSAGE_ID'] ?? '',
    'attempt' => $_SERVER['HTTP_X_ATTEMPT'] ?? '',
    'at' => microtime(true),
];
// "broken" fails with the job's "status" (500 by default) until the test
// creates this file in php-fpm's /tmp: a job that failed for a cause
// outside it, fixed since, that runs once it is replayed.
const FIXED = '/tmp/fpmq-fixed';
if ($do === 'broken') {
    $record['fixed'] = file_exists(FIXED);
}
if ($do === 'echo' || $do === 'raw') {
    $record['post'] = $_POST;
    $record['input'] = file_get_contents('php://input');
    $record['server'] = array_filter(
        $_SERVER,
        static fn ($k) => str_starts_with((string) $k, 'HTTP_X_') || $k === 'CONTENT_TYPE',
        ARRAY_FILTER_USE_KEY,
    );
}
// Not WORKER_LOG: the pool sets that to php/worker.php's log.
$log = '/var/log/workers/misbehave.log';
file_put_contents($log, json_encode($record) . "\n", FILE_APPEND | LOCK_EX);

switch ($do) {
    case 'fatal':
        undefined_function();
        break;
    case 'fatal-after-output':
        echo str_repeat('x', 16384);
        flush();
        undefined_function();
        break;
    case 'exception':
        throw new RuntimeException('this job always throws');
    case 'memory':
        ini_set('memory_limit', '16M');
        $s = str_repeat('x', 64 << 20);
        break;
    case 'kill':
        posix_kill(getmypid(), 9);
        break;
    case 'print':
        $chunk = str_repeat('y', 1 << 20);
        for ($i = 0; $i < (int) ($_POST['mib'] ?? 1); $i++) {
            echo $chunk;
        }
        break;
    case 'errorlog':
        for ($i = 0; $i < (int) ($_POST['times'] ?? 1); $i++) {
            error_log("message {$i}");
        }
        break;
    case 'sleep':
        usleep((int) round((float) ($_POST['seconds'] ?? 1) * 1e6));
        break;
    case 'fail':
        http_response_code(500);
        break;
    case 'broken':
        if (!$record['fixed']) {
            http_response_code((int) ($_POST['status'] ?? 500));
        }
        break;
}
