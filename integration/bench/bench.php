<?php
// The system benchmark's worker (integration/bench). php-fpm runs it both for
// the daemon's jobs and for the bench's direct FastCGI requests, so that the
// two paths do the same work: by default none at all, which leaves the
// plumbing around the script to be measured.
//
// A "sleep" field makes it sleep that many seconds. A "tag" field makes it
// append one line to samples.log next to it:
//
//     TAG NUMBER SENT_US START_US END_US
//
// SENT_US is the job's "sent_us" field, when the bench sent it; START_US and
// END_US are when this script started and ended. All are microseconds of the
// wall clock, which the host and the containers share (one kernel).
// gettimeofday() reads the same clock as microtime(true) but as integers, so
// no precision is lost in a float.

declare(strict_types=1);

$start = gettimeofday();

$sleep = (float) ($_POST['sleep'] ?? 0);
if ($sleep > 0) {
    usleep((int) round($sleep * 1e6));
}

$tag = $_POST['tag'] ?? '';
if ($tag === '') {
    return;
}
if (!is_string($tag) || preg_match('/^[a-z]+$/D', $tag) !== 1) {
    http_response_code(400);
    return;
}
$end = gettimeofday();
$line = sprintf(
    "%s %d %d %d %d\n",
    $tag,
    (int) ($_POST['number'] ?? 0),
    (int) ($_POST['sent_us'] ?? 0),
    $start['sec'] * 1000000 + $start['usec'],
    $end['sec'] * 1000000 + $end['usec'],
);
// LOCK_EX keeps the lines of concurrent children whole.
if (file_put_contents(__DIR__ . '/samples.log', $line, FILE_APPEND | LOCK_EX) === false) {
    http_response_code(500);
}
