<?php

// The fpmq daemon's SCRIPT_FILENAME for the transport "async_json" (queue
// "messages_json", the Symfony serializer), with REQUEST_BODY=raw.

declare(strict_types=1);

require dirname(__DIR__) . '/config/bootstrap.php';

Fpmq\Symfony\Runner::run(new App\Kernel('prod', false), 'async_json');
