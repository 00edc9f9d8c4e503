<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Fpmq\Worker\Job;
use Symfony\Component\HttpKernel\KernelInterface;

/**
 * Runner is the entry of the pool script that the fpmq daemon runs for
 * each message (SCRIPT_FILENAME, with REQUEST_BODY=raw):
 *
 *     require dirname(__DIR__) . '/vendor/autoload.php';
 *     Fpmq\Symfony\Runner::run(new App\Kernel('prod', false), 'async');
 *
 * It boots the kernel, as php-fpm boots it for each HTTP request, runs the
 * job as a message of the transport (Consumer) and answers the daemon
 * (Outcome::answer). A kernel that cannot boot throws or dies: the daemon
 * counts a failed attempt and runs the job again later, losing nothing.
 */
final class Runner
{
    /** The Consumer's service id, which FpmqBundle makes public. */
    public const CONSUMER = 'fpmq.consumer';

    private function __construct()
    {
    }

    /**
     * run runs the current request's job (Job::fromGlobals(), or $job) as a
     * message of $transport, answers the daemon and returns the outcome. A
     * failure is also written to the FastCGI error stream (error_log), which
     * the daemon logs with the job's id.
     *
     * @param string $transport the name of the transport whose queue the daemon consumes,
     *        as framework.messenger.transports names it
     *
     * @throws \LogicException when the kernel lacks FpmqBundle
     * @throws \Throwable what booting the kernel or the Consumer throws
     */
    public static function run(KernelInterface $kernel, string $transport, ?Job $job = null): Outcome
    {
        $job ??= Job::fromGlobals();
        $kernel->boot();
        $container = $kernel->getContainer();
        if (!$container->has(self::CONSUMER)) {
            throw new \LogicException(
                'fpmq: add Fpmq\Symfony\FpmqBundle to the kernel\'s bundles, with Messenger enabled'
            );
        }
        $consumer = $container->get(self::CONSUMER);
        if (!$consumer instanceof Consumer) {
            throw new \LogicException('fpmq: the service ' . self::CONSUMER . ' is not ' . Consumer::class);
        }
        $outcome = $consumer->consume($job, $transport);
        $outcome->answer($job);
        if ($outcome->kind !== Outcome::HANDLED) {
            error_log("fpmq/symfony: {$outcome->kind}: {$outcome->reason}");
        }
        return $outcome;
    }
}
