<?php

declare(strict_types=1);

namespace Fpmq\Symfony;

use Psr\Container\ContainerInterface;

/**
 * RetrySenderLocator stands in front of the senders locator of Messenger's
 * SendFailedMessageForRetryListener (FpmqPass puts it there): for the
 * transport fpmq runs now it returns a RetrySender, which captures the
 * retry instead of publishing it; for every other transport it returns the
 * transport's own sender, as before.
 */
final class RetrySenderLocator implements ContainerInterface
{
    public function __construct(
        private readonly ContainerInterface $senders,
        private readonly Run $run,
    ) {
    }

    public function has(string $id): bool
    {
        return $this->run->runs($id) || $this->senders->has($id);
    }

    /**
     * @throws \Psr\Container\NotFoundExceptionInterface as the senders locator does, for an unknown transport
     */
    public function get(string $id): mixed
    {
        return $this->run->runs($id) ? new RetrySender($this->run) : $this->senders->get($id);
    }
}
