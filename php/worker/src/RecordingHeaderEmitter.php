<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * RecordingHeaderEmitter keeps the answer in memory instead of sending it:
 * pass it to Job::fromArrays to test a worker's decisions without a web
 * server, then read status() and headers().
 */
final class RecordingHeaderEmitter implements HeaderEmitter
{
    private ?int $status = null;

    /** @var array<string, string> the headers set, by name as given */
    private array $headers = [];

    public function status(int $code): void
    {
        $this->status = $code;
    }

    public function header(string $name, string $value): void
    {
        $this->remove($name);
        $this->headers[$name] = $value;
    }

    public function remove(string $name): void
    {
        // Header names are case-insensitive, as header_remove() treats them.
        foreach (array_keys($this->headers) as $set) {
            if (strcasecmp($set, $name) === 0) {
                unset($this->headers[$set]);
            }
        }
    }

    /** getStatus returns the status set last, or null if none was (PHP then answers 200). */
    public function getStatus(): ?int
    {
        return $this->status;
    }

    /**
     * getHeaders returns the headers set and not removed, by name, in the
     * order they were set.
     *
     * @return array<string, string>
     */
    public function getHeaders(): array
    {
        return $this->headers;
    }
}
