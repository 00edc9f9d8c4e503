<?php

// A worker for TestTracing: every run appends the trace context it was
// given (HTTP_TRACEPARENT, HTTP_TRACESTATE) as one JSON line to
// /var/log/workers/trace.log, then answers as the job's fields say:
// "status" (200 by default), or 500 while the attempt is at most
// "fail_until".

declare(strict_types=1);

$attempt = (int) ($_SERVER['HTTP_X_ATTEMPT'] ?? '0');
$record = [
    'job' => $_POST['job'] ?? '',
    'id' => $_SERVER['HTTP_X_MESSAGE_ID'] ?? '',
    'attempt' => $attempt,
    'traceparent' => $_SERVER['HTTP_TRACEPARENT'] ?? '',
    'tracestate' => $_SERVER['HTTP_TRACESTATE'] ?? '',
];
file_put_contents('/var/log/workers/trace.log', json_encode($record) . "\n", FILE_APPEND | LOCK_EX);

$status = (int) ($_POST['status'] ?? 200);
if ($attempt <= (int) ($_POST['fail_until'] ?? 0)) {
    $status = 500;
}
http_response_code($status);
