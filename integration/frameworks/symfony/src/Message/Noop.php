<?php

declare(strict_types=1);

namespace App\Message;

/**
 * Noop is the framework benchmark's message (integration/fwbench): its
 * handler does nothing, so that what is measured is what running a
 * message costs, through fpmq and through `bin/console messenger:consume`.
 */
final class Noop
{
}
