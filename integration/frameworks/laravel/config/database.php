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
            // The pool's children write at once (a batch's two jobs ending
            // together): wait up to 10 s for SQLite's lock, not fail at once.
            'options' => [PDO::ATTR_TIMEOUT => 10],
        ],
    ],
    'migrations' => 'migrations',
];
