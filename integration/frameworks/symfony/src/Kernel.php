<?php

declare(strict_types=1);

namespace App;

use App\Handler\NoopHandler;
use App\Handler\TaskHandler;
use App\Message\Noop;
use App\Message\Task;
use App\Messenger\HandlerEnvelopeMiddleware;
use App\Messenger\WorkerEventLog;
use Fpmq\Symfony\FpmqBundle;
use Fpmq\Symfony\MessageIdMiddleware;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * Kernel is the test application of the Symfony bridge: FrameworkBundle
 * with Messenger and three AMQP transports, and fpmq's bundle.
 *
 * - async: the PHP serializer, exchange and queue "messages";
 * - async_json: the Symfony serializer (JSON), exchange and queue
 *   "messages_json";
 * - failed: the failure transport, which fpmq never sends to (its
 *   dead-letter queue takes that part), so its queue must never appear;
 * - noop: the PHP serializer, exchange and queue "noop", for the
 *   framework benchmark's Noop message (integration/fwbench).
 *
 * The fpmq daemon declares the job queues; the transports declare their
 * exchanges and bind the queues, declaring them passive (AMQP_PASSIVE):
 * whatever arguments the daemon gave a queue, Symfony's declaration agrees.
 */
final class Kernel extends BaseKernel
{
    use MicroKernelTrait;

    public function registerBundles(): iterable
    {
        return [new FrameworkBundle(), new FpmqBundle()];
    }

    /**
     * getBuildDir is var/cache/<env>, read-only at run time: the container
     * and its preload file, built with the image (cache:warmup).
     */
    public function getBuildDir(): string
    {
        return $this->getProjectDir() . '/var/cache/' . $this->environment;
    }

    /** getCacheDir is what the application writes as it runs: the pool's tmpfs. */
    public function getCacheDir(): string
    {
        return APP_STATE_DIR . '/cache/' . $this->environment;
    }

    public function getLogDir(): string
    {
        return APP_STATE_DIR . '/log';
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $boundQueue = static fn (string $queue): array => [
            'queues' => [$queue => ['flags' => AMQP_DURABLE | AMQP_PASSIVE]],
        ];
        $container->extension('framework', [
            'secret' => 'fpmq-symfony-test',
            'http_method_override' => false,
            'handle_all_throwables' => true,
            'php_errors' => ['log' => true],
            'serializer' => ['enabled' => true],
            'messenger' => [
                'failure_transport' => 'failed',
                'transports' => [
                    'async' => [
                        'dsn' => '%env(MESSENGER_TRANSPORT_DSN)%/messages',
                        'options' => $boundQueue('messages'),
                        'retry_strategy' => ['max_retries' => 2, 'delay' => 1000, 'multiplier' => 2],
                    ],
                    'async_json' => [
                        'dsn' => '%env(MESSENGER_TRANSPORT_DSN)%/messages_json',
                        'serializer' => 'messenger.transport.symfony_serializer',
                        'options' => $boundQueue('messages_json'),
                        'retry_strategy' => ['max_retries' => 2, 'delay' => 1000, 'multiplier' => 1],
                    ],
                    'failed' => '%env(MESSENGER_TRANSPORT_DSN)%/failed',
                    'noop' => [
                        'dsn' => '%env(MESSENGER_TRANSPORT_DSN)%/noop',
                        'options' => $boundQueue('noop'),
                    ],
                ],
                'routing' => [Task::class => 'async', Noop::class => 'noop'],
                'buses' => [
                    'messenger.bus.default' => [
                        'middleware' => [MessageIdMiddleware::class, HandlerEnvelopeMiddleware::class],
                    ],
                ],
            ],
        ]);
        $services = $container->services();
        $services->set(HandlerEnvelopeMiddleware::class);
        $services->set(TaskHandler::class)->tag('messenger.message_handler');
        $services->set(NoopHandler::class)->tag('messenger.message_handler');
        $services->set(WorkerEventLog::class)->tag('kernel.event_subscriber');
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
    }
}
