package main

import (
	"context"
	"sync"
	"time"

	"github.com/fpmq/fpmq/services/internal/management"
)

// heads reads, through RabbitMQ's management API, when the job at the head
// of each queue was published, for the overview's age of the oldest
// waiting job, and keeps the answer for a while (CONSOLE_CACHE_TTL) as
// daemonSource does. The job at the head is the oldest waiting but for
// priorities and a job put back after a failure of its daemon.
type heads struct {
	api     *management.Client // nil: the management API is off
	timeout time.Duration
	ttl     time.Duration

	mu  sync.Mutex
	at  time.Time
	got map[string]time.Time
	err error
}

// read returns the head timestamps by queue name, or why they are missing.
func (h *heads) read(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	if h == nil || h.api == nil {
		return nil, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && now.Sub(h.at) < h.ttl {
		return h.got, h.err
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	h.got, h.err = h.api.HeadTimestamps(ctx)
	h.at = now
	return h.got, h.err
}
