<?php

declare(strict_types=1);

return [
    'default' => env('QUEUE_CONNECTION', 'fpmq'),
    'connections' => [
        'fpmq' => [
            'driver' => 'fpmq',
            'url' => env('AMQP_URL'),
            'queue' => env('FPMQ_QUEUE', 'laravel'),
            'delay_max' => 604800,
        ],
        'sync' => ['driver' => 'sync'],
    ],
    'batching' => [
        'database' => 'sqlite',
        'table' => 'job_batches',
    ],
    'failed' => [
        'driver' => 'database-uuids',
        'database' => 'sqlite',
        'table' => 'failed_jobs',
    ],
];
