<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Fpmq\Symfony\DependencyInjection\FpmqPass;
use Symfony\Component\DependencyInjection\ContainerBuilder;
use Symfony\Component\HttpKernel\Bundle\Bundle;

/**
 * FpmqBundle lets the fpmq daemon run the application's Messenger
 * messages: add it to the kernel's bundles, beside FrameworkBundle with
 * Messenger enabled, and point the daemon at a pool script that calls
 * Runner::run. It has no configuration of its own; FpmqPass wires it.
 */
final class FpmqBundle extends Bundle
{
    public function build(ContainerBuilder $container): void
    {
        parent::build($container);
        $container->addCompilerPass(new FpmqPass());
    }
}
