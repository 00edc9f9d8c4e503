<?php

// Enqueues the job {"number": N} for each number given, as `caller N` does,
// and prints each message id once the broker has confirmed the job:
//
//   AMQP_URL=amqp://caller:PASSWORD@rabbitmq:5672/fpmq php examples/enqueue.php 42
//
// php/worker.php then logs "Processing 42". AMQP_QUEUE names another job
// queue (default commands); DELAY delays the jobs by that many seconds.

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Fpmq\Publisher;
use Fpmq\PublishException;

$url = getenv('AMQP_URL');
if ($url === false || $url === '' || $argc < 2) {
    fwrite(STDERR, "usage: AMQP_URL=amqp://USER:PASSWORD@HOST:5672/VHOST php enqueue.php NUMBER...\n");
    exit(2);
}
$queue = getenv('AMQP_QUEUE') ?: Publisher::DEFAULT_QUEUE;
$delay = (float) (getenv('DELAY') ?: 0);

$publisher = Publisher::connect($url, $queue);
try {
    foreach (array_slice($argv, 1) as $number) {
        $id = $publisher->publish('', ['number' => (int) $number], delay: $delay);
        echo " [x] Message sent: {$number} (message id {$id})\n";
    }
} catch (PublishException $e) {
    fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n");
    exit(1);
} finally {
    $publisher->close();
}
