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

// Status reads the pool's status page in its JSON form.
func (p *Pool) Status(ctx context.Context) (Status, error) {
	resp, err := p.get(ctx, p.StatusPath, "json")
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

// Status is the part of php-fpm's status page (pm.status_path?json) that
// tells an operator whether the pool is big enough. Counts are plain
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
}

// ParseStatus decodes php-fpm's JSON status page.
func ParseStatus(body []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("php-fpm status page: %w", err)
	}
	return s, nil
}
