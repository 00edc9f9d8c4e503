<?php

declare(strict_types=1);

namespace Fpmq\Symfony\DependencyInjection;

use Fpmq\Symfony\Consumer;
use Fpmq\Symfony\FailureSenderLocator;
use Fpmq\Symfony\RetrySenderLocator;
use Fpmq\Symfony\Run;
use Fpmq\Symfony\Runner;
use Symfony\Component\DependencyInjection\Compiler\CompilerPassInterface;
use Symfony\Component\DependencyInjection\Compiler\ServiceLocatorTagPass;
use Symfony\Component\DependencyInjection\ContainerBuilder;
use Symfony\Component\DependencyInjection\ContainerInterface;
use Symfony\Component\DependencyInjection\Definition;
use Symfony\Component\DependencyInjection\Reference;

/**
 * FpmqPass wires the Runner into FrameworkBundle's Messenger services, which
 * are private:
 *
 * - the public service fpmq.consumer (Consumer), with a locator of each
 *   transport's serializer (FrameworkBundle gives it to the transport's
 *   factory as the third argument of its definition), the routable bus
 *   that messenger:consume dispatches on, the event dispatcher and the
 *   retry strategy locator;
 * - the senders locator of Messenger's retry listener behind a
 *   RetrySenderLocator, and the failure transports' locator of its failure
 *   listener behind a FailureSenderLocator, so that for the transport fpmq
 *   runs a retry is captured instead of published and no failure transport
 *   receives the message. The listeners stay as they are, at their
 *   priorities; every other transport keeps their behaviour.
 *
 * Without Messenger it does nothing, and Runner says so.
 */
final class FpmqPass implements CompilerPassInterface
{
    private const RETRY_LISTENER = 'messenger.retry.send_failed_message_for_retry_listener';
    private const FAILURE_LISTENER = 'messenger.failure.send_failed_message_to_failure_transport_listener';
    private const RUN = 'fpmq.run';

    public function process(ContainerBuilder $container): void
    {
        if (!$container->hasDefinition('messenger.retry_strategy_locator')) {
            return;
        }
        $container->register(self::RUN, Run::class);
        $container->register(Runner::CONSUMER, Consumer::class)
            ->setPublic(true)
            ->setArguments([
                ServiceLocatorTagPass::register($container, $this->serializers($container)),
                new Reference('messenger.routable_message_bus'),
                new Reference('event_dispatcher'),
                new Reference('messenger.retry_strategy_locator'),
                new Reference(self::RUN),
                new Reference('logger', ContainerInterface::IGNORE_ON_INVALID_REFERENCE),
            ]);
        $locators = [
            self::RETRY_LISTENER => RetrySenderLocator::class,
            self::FAILURE_LISTENER => FailureSenderLocator::class,
        ];
        foreach ($locators as $listener => $class) {
            if ($container->hasDefinition($listener)) {
                $definition = $container->getDefinition($listener);
                $locator = new Definition($class, [$definition->getArgument(0), new Reference(self::RUN)]);
                $definition->replaceArgument(0, $locator);
            }
        }
    }

    /**
     * serializers returns each transport's serializer, by transport name,
     * as FrameworkBundle defines transports: tagged messenger.receiver with
     * their name as alias, made by the transport factory's createTransport
     * from (DSN, options, serializer).
     *
     * @return array<string, Reference>
     */
    private function serializers(ContainerBuilder $container): array
    {
        $serializers = [];
        foreach ($container->findTaggedServiceIds('messenger.receiver') as $id => $tags) {
            $definition = $container->getDefinition($id);
            $factory = $definition->getFactory();
            $serializer = $definition->getArguments()[2] ?? null;
            $made = is_array($factory) && ($factory[1] ?? null) === 'createTransport';
            if (!$made || !$serializer instanceof Reference) {
                continue;
            }
            $serializers[(string) ($tags[0]['alias'] ?? $id)] = $serializer;
        }
        return $serializers;
    }
}
