<?php

declare(strict_types=1);

namespace Fpmq\Symfony\Tests\Fixtures;

use Fpmq\Symfony\FpmqBundle;
use Fpmq\Symfony\MessageIdMiddleware;
use Psr\Log\NullLogger;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * TestKernel is an application with FrameworkBundle, Messenger and
 * FpmqBundle, its transports in memory: "async" (the PHP serializer, the
 * default retry strategy: 3 retries, 1000 ms, multiplier 2), "async_json"
 * (the Symfony serializer) and the failure transport "failed". Its logger
 * is silent. Without $fpmq, it lacks FpmqBundle.
 */
final class TestKernel extends Kernel
{
    use MicroKernelTrait;

    public function __construct(private readonly string $dir, private readonly bool $fpmq = true)
    {
        parent::__construct('test', false);
    }

    public function registerBundles(): iterable
    {
        return $this->fpmq ? [new FrameworkBundle(), new FpmqBundle()] : [new FrameworkBundle()];
    }

    public function getCacheDir(): string
    {
        return $this->dir . '/cache';
    }

    public function getLogDir(): string
    {
        return $this->dir . '/log';
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $container->extension('framework', [
            'secret' => 'test',
            'test' => true,
            'http_method_override' => false,
            'handle_all_throwables' => true,
            'php_errors' => ['log' => false],
            'serializer' => ['enabled' => true],
            'messenger' => [
                'failure_transport' => 'failed',
                'transports' => [
                    'async' => 'in-memory://',
                    'async_json' => ['dsn' => 'in-memory://', 'serializer' => 'messenger.transport.symfony_serializer'],
                    'failed' => 'in-memory://',
                ],
                'routing' => [Ping::class => 'async'],
            ] + ($this->fpmq ? [
                // Named only: FpmqBundle defines the service.
                'buses' => ['messenger.bus.default' => ['middleware' => [MessageIdMiddleware::class]]],
            ] : []),
        ]);
        $services = $container->services();
        $services->set(PingHandler::class)->tag('messenger.message_handler');
        $services->set('logger', NullLogger::class);
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
    }
}
