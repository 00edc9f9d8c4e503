<?php

// The fpmq daemon's SCRIPT_FILENAME for the transport "noop" (queue
// "noop", the PHP serializer), with REQUEST_BODY=raw: the framework
// benchmark's (integration/fwbench).

declare(strict_types=1);

require dirname(__DIR__) . '/config/bootstrap.php';

Fpmq\Symfony\Runner::run(new App\Kernel('prod', false), 'noop');
