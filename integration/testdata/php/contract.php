<?php

// A worker for TestWorkerContract: the job's fields choose its answer, in
// the worker contract's headers, and every run appends what the script saw
// as one JSON line to /var/log/workers/contract.log before it answers.
//
// Fields: "job" names the job for the test; "retry_in" answers
// Fpmq-Retry-In on the first attempt only; "fail" answers Fpmq-Fail;
// "max_attempts" answers Fpmq-Max-Attempts; "status" is the HTTP status
// (200 by default).

declare(strict_types=1);

$message = $_SERVER['HTTP_X_FPMQ_MESSAGE'] ?? null;
$decoded = null;
$error = '';
if (is_string($message)) {
    try {
        $decoded = json_decode($message, true, 512, JSON_THROW_ON_ERROR);
    } catch (JsonException $e) {
        $error = $e->getMessage();
    }
}
$attempt = (int) ($_SERVER['HTTP_X_ATTEMPT'] ?? '0');
$record = [
    'job' => $_POST['job'] ?? '',
    'id' => $_SERVER['HTTP_X_MESSAGE_ID'] ?? '',
    'attempt' => $attempt,
    'max_attempts' => $_SERVER['HTTP_X_MAX_ATTEMPTS'] ?? '',
    'at' => microtime(true),
    // The param as received, for the test to parse; PHP's own reading of
    // it, with PHP's types, and its error if it could not read it.
    'message' => $message,
    'decoded' => $decoded,
    'decode_error' => $error,
    'omitted' => $_SERVER['HTTP_X_FPMQ_OMITTED_HEADERS'] ?? '',
];
file_put_contents('/var/log/workers/contract.log', json_encode($record) . "\n", FILE_APPEND | LOCK_EX);

if (isset($_POST['retry_in']) && $attempt === 1) {
    header('Fpmq-Retry-In: ' . $_POST['retry_in']);
}
if (isset($_POST['fail'])) {
    header('Fpmq-Fail: ' . $_POST['fail']);
}
if (isset($_POST['max_attempts'])) {
    header('Fpmq-Max-Attempts: ' . $_POST['max_attempts']);
}
http_response_code((int) ($_POST['status'] ?? 200));
