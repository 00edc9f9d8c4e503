<?php
// Publishes jobs with the fpmq PHP library (php/, at /app in the php-fpm
// image) for phplib_test.go. The first argument says which:
//
//   form N         {"number": N} to AMQP_QUEUE, named "php-form", header tenant=acme
//   raw TAG        a text/csv body to AMQP_QUEUE, named "php-raw"
//   delayed N S    {"number": N} to AMQP_QUEUE, due in S seconds
//   fail           {"number": 1} to AMQP_QUEUE, which must not confirm it
//
// It prints "sent <id>" for each job confirmed, and on a PublishException
// the exception's class and message, exiting 1.

declare(strict_types=1);

require '/app/autoload.php';

use Fpmq\Publisher;
use Fpmq\PublishException;

$publisher = Publisher::connect((string) getenv('AMQP_URL'), (string) (getenv('AMQP_QUEUE') ?: 'commands'), timeout: 5.0);
try {
    $id = match ($argv[1] ?? '') {
        'form' => $publisher->publish('php-form', ['number' => (int) $argv[2]], headers: ['tenant' => 'acme'], priority: 3),
        'raw' => $publisher->publishRaw('php-raw', "tag,value\n{$argv[2]},1\n", 'text/csv'),
        'delayed' => $publisher->publish('php-delayed', ['number' => (int) $argv[2]], delay: (float) $argv[3]),
        'fail' => $publisher->publish('php-fail', ['number' => 1]),
        default => throw new InvalidArgumentException('unknown command ' . ($argv[1] ?? '')),
    };
    echo "sent {$id}\n";
} catch (PublishException $e) {
    echo get_class($e), ': ', $e->getMessage(), "\n";
    exit(1);
} finally {
    $publisher->close();
}
