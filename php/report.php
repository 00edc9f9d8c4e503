<?php

// The report worker: php-fpm's "reports" pool runs this script once per job
// of the reports queue, an example of a slow job on a route of its own. As
// for php/worker.php, the daemon posts the job's fields as form fields: the
// "number" field is the report's number.

declare(strict_types=1);

require __DIR__ . '/autoload.php';

use Fpmq\Worker\Job;

$job = Job::fromGlobals();

$number = $job->fields()['number'] ?? null;
if (!is_string($number) || preg_match('/^-?[0-9]+$/D', $number) !== 1) {
    // A report without an integer number can never succeed: answer 4xx so
    // the daemon does not retry it.
    $job->reject();
    error_log('report: rejected a job without an integer number');
    exit;
}

$line = "Report {$number}";

$log = getenv('REPORT_LOG');
if ($log === false || $log === '') {
    $log = '/var/log/workers/reports.log';
}
if (file_put_contents($log, $line . "\n", FILE_APPEND | LOCK_EX) === false) {
    // Not writing the line is a failure of this attempt: the daemon retries.
    $job->retry();
    error_log("report: cannot write to {$log}");
    exit;
}
error_log($line);

// Generating the report: REPORT_SLEEP seconds of work.
$sleep = getenv('REPORT_SLEEP');
$seconds = ($sleep === false || $sleep === '') ? 5.0 : (float) $sleep;
if ($seconds > 0) {
    usleep((int) round($seconds * 1e6));
}
