// Package phpfpm knows what php-fpm does besides running scripts: its ping
// and status pages, the answers it gives itself when it refuses to run a
// script, and the shape of what PHP writes to FastCGI stderr.
package phpfpm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
)

// Pool asks one php-fpm pool for its ping and status pages, which php-fpm
// serves itself (ping.path and pm.status_path in the pool's configuration)
// whatever SCRIPT_FILENAME says. Both are served by one of the pool's
// children: with every child busy, they wait in the listen queue.
type Pool struct {
	Client     *fastcgi.Client
	PingPath   string // the pool's ping.path, such as "/ping"
	StatusPath string // the pool's pm.status_path, such as "/status"
}

// Ping asks the pool's ping path and returns nil if it answered 200. An
// error wraps fastcgi.ErrUnavailable when the pool refused the connection.
func (p *Pool) Ping(ctx context.Context) error {
	resp, err := p.get(ctx, p.PingPath, "")
	if err != nil {
		return fmt.Errorf("ping %s: %w", p.PingPath, err)
	}
	if resp.Status != 200 {
		return fmt.Errorf("ping %s: status %d", p.PingPath, resp.Status)
	}
	return nil
}

// Status reads the pool's status page in its JSON form, with the list of
// processes (json&full), from which ParseStatus counts them. Its body grows
// by about 400 bytes per child: the Client must keep that much of a
// response body (fastcgi.Options.MaxBodyKept).
func (p *Pool) Status(ctx context.Context) (Status, error) {
	resp, err := p.get(ctx, p.StatusPath, "json&full")
	if err != nil {
		return Status{}, fmt.Errorf("php-fpm status page: %w", err)
	}
	if resp.Status != 200 {
		return Status{}, fmt.Errorf("php-fpm status page %s: status %d", p.StatusPath, resp.Status)
	}
	return ParseStatus(resp.Body)
}

func (p *Pool) get(ctx context.Context, path, query string) (*fastcgi.Response, error) {
	return p.Client.Do(ctx, &fastcgi.Request{Params: []fastcgi.Param{
		{Name: "GATEWAY_INTERFACE", Value: "CGI/1.1"},
		{Name: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
		{Name: "REQUEST_METHOD", Value: "GET"},
		{Name: "SCRIPT_NAME", Value: path},
		{Name: "SCRIPT_FILENAME", Value: path},
		{Name: "REQUEST_URI", Value: path},
		{Name: "QUERY_STRING", Value: query},
	}})
}

// Status is the part of php-fpm's status page (pm.status_path?json&full)
// that tells an operator whether the pool is big enough. Counts are plain
// numbers; the *Total-like fields only grow while the pool runs.
type Status struct {
	ActiveProcesses    float64 `json:"active processes"`
	IdleProcesses      float64 `json:"idle processes"`
	TotalProcesses     float64 `json:"total processes"`
	ListenQueue        float64 `json:"listen queue"`
	MaxListenQueue     float64 `json:"max listen queue"`
	AcceptedConn       float64 `json:"accepted conn"`
	MaxChildrenReached float64 `json:"max children reached"`
	SlowRequests       float64 `json:"slow requests"`

	// Processes is the full page's list, one entry per child.
	Processes []Process `json:"processes"`
}

// Process is one child in the full status page.
type Process struct {
	// State is php-fpm's name of the child's request stage: "Idle" while
	// it waits for a connection; "Running", "Reading headers", "Finishing"
	// and the others while it serves one, a kept-alive one between
	// requests included.
	State string `json:"state"`
}

// idleState is the State of a child that waits for a new connection.
const idleState = "Idle"

// ParseStatus decodes php-fpm's JSON status page. When the page lists the
// processes (json&full), the process counts are taken from that list, one
// child per entry, active meaning not idle: php-fpm's own summary counters
// drift once clients keep connections alive, as the daemon does with
// FASTCGI_KEEPALIVE (php-src issues 14212 and 18956: every request on a
// kept connection adds an active process that is never taken back, so
// that a pool of 6 reports 11).
func ParseStatus(body []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("php-fpm status page: %w", err)
	}
	if len(s.Processes) > 0 {
		idle := 0
		for _, p := range s.Processes {
			if p.State == idleState {
				idle++
			}
		}
		s.TotalProcesses = float64(len(s.Processes))
		s.IdleProcesses = float64(idle)
		s.ActiveProcesses = float64(len(s.Processes) - idle)
	}
	return s, nil
}
