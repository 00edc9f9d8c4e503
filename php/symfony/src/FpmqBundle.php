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
 * Runner::run. It has no configuration of its own; FpmqPass wires it,
 * PreloadWarmer adds what a run loads to the container's preload file, and
 * it defines the service MessageIdMiddleware, for the buses' middleware.
 */
final class FpmqBundle extends Bundle
{
    public function build(ContainerBuilder $container): void
    {
        parent::build($container);
        $container->addCompilerPass(new FpmqPass());
        // Registered here, before FrameworkBundle's passes collect the tag.
        $container->register('fpmq.preload_warmer', PreloadWarmer::class)->addTag('kernel.cache_warmer');
        // The middleware as a bus's middleware list names it, by class; an
        // application's own definition, loaded after, replaces this one.
        $container->register(MessageIdMiddleware::class, MessageIdMiddleware::class);
    }
}
