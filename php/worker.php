<?php

// The job worker: php-fpm runs this script once per job. The daemon posts the
// job's fields as form fields, so the job's "number" field holds its number.
// Delivery is at least once: the same job may arrive twice (see the README),
// and $job->id() tells the copies apart.

declare(strict_types=1);

require __DIR__ . '/autoload.php';

use Fpmq\Worker\Job;

$job = Job::fromGlobals();

$number = $job->fields()['number'] ?? null;
if (!is_string($number) || preg_match('/^-?[0-9]+$/D', $number) !== 1) {
    // A job without an integer number can never succeed: answer 4xx so the
    // daemon does not retry it.
    $job->reject();
    error_log('worker: rejected a job without an integer number');
    exit;
}

$line = "Processing {$number}";

$log = getenv('WORKER_LOG');
if ($log === false || $log === '') {
    $log = '/var/log/workers/workers.log';
}
if (file_put_contents($log, $line . "\n", FILE_APPEND | LOCK_EX) === false) {
    // Not writing the line is a failure of this attempt: the daemon retries.
    $job->retry();
    error_log("worker: cannot write to {$log}");
    exit;
}
// No error_log($line): it would go to the FastCGI stderr stream, which the
// daemon logs as a warning of its own, a second log line per job next to the
// daemon's outcome line. Use error_log() for what needs a look.

$sleep = getenv('WORKER_SLEEP');
$seconds = ($sleep === false || $sleep === '') ? 1.0 : (float) $sleep;
if ($seconds > 0) {
    usleep((int) round($seconds * 1e6));
}
