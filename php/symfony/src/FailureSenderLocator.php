<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Psr\Container\ContainerInterface;

/**
 * FailureSenderLocator stands in front of the failure transports' locator
 * of Messenger's SendFailedMessageToFailureTransportListener (FpmqPass puts
 * it there): the transport fpmq runs now has no failure transport, so a
 * message Symfony gives up on is not sent anywhere by Symfony; fpmq
 * dead-letters it instead (its dead-letter queue is the failure transport).
 * Every other transport keeps its own.
 */
final class FailureSenderLocator implements ContainerInterface
{
    public function __construct(
        private readonly ContainerInterface $senders,
        private readonly Run $run,
    ) {
    }

    public function has(string $id): bool
    {
        return !$this->run->runs($id) && $this->senders->has($id);
    }

    /**
     * @throws \Psr\Container\NotFoundExceptionInterface as the failure senders' locator does
     */
    public function get(string $id): mixed
    {
        return $this->senders->get($id);
    }
}
