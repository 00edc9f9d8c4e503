<?php

// Dispatches N (1) Noop messages on the application's bus, which sends them
// through the transport "noop": php bin/noop.php [N]. The framework
// benchmark (integration/fwbench) captures what it sends.

declare(strict_types=1);

use App\Kernel;
use App\Message\Noop;
use Symfony\Component\Messenger\MessageBusInterface;

require dirname(__DIR__) . '/config/bootstrap.php';

$kernel = new Kernel('prod', false);
$kernel->boot();
$bus = $kernel->getContainer()->get('messenger.default_bus');
assert($bus instanceof MessageBusInterface);
for ($i = (int) ($argv[1] ?? 1); $i > 0; $i--) {
    $bus->dispatch(new Noop());
}
echo "ok\n";
