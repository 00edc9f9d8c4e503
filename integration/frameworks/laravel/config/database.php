<?php

declare(strict_types=1);

return [
    'default' => 'sqlite',
    'connections' => [
        'sqlite' => [
            'driver' => 'sqlite',
            'database' => '/tmp/laravel/database.sqlite',
            'prefix' => '',
            'foreign_key_constraints' => true,
            // The pool's children write at once: wait up to 10 s for
            // SQLite's lock rather than fail at once (a lock upgrade inside a
            // transaction still fails at once: see laravel_test.go's batch).
            'options' => [PDO::ATTR_TIMEOUT => 10],
        ],
    ],
    'migrations' => 'migrations',
];
