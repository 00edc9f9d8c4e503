package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrRefused means the daemon refused an admin request: no token, or the
// wrong one, or a token needed and none set on the daemon.
var ErrRefused = errors.New("refused")

// Client asks a running daemon's admin endpoints, as `daemon pause`,
// `daemon resume` and `daemon status` do.
type Client struct {
	// URL is the daemon's METRICS_ADDR as a URL: http://HOST:PORT.
	URL string
	// Token, if not empty, is sent as the bearer token: ADMIN_TOKEN.
	Token string
	// HTTP sends the requests; nil means http.DefaultClient. Each call
	// is bounded by its ctx.
	HTTP *http.Client
}

// Pause pauses the daemon's consumption; an empty reason gives none.
func (c *Client) Pause(ctx context.Context, reason string) (Pause, error) {
	var p Pause
	body, err := json.Marshal(PauseRequest{Reason: reason})
	if err != nil {
		return p, err
	}
	return p, c.do(ctx, http.MethodPost, "/admin/pause", body, &p)
}

// Resume ends the operator's pause.
func (c *Client) Resume(ctx context.Context) (Pause, error) {
	var p Pause
	return p, c.do(ctx, http.MethodPost, "/admin/resume", nil, &p)
}

// PauseState reports the operator's pause, changing nothing.
func (c *Client) PauseState(ctx context.Context) (Pause, error) {
	var p Pause
	return p, c.do(ctx, http.MethodGet, "/admin/pause", nil, &p)
}

// Status reads the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/admin/status", nil, &s)
}

// Jobs asks for the daemon's recent failed attempts and job names.
func (c *Client) Jobs(ctx context.Context) (Jobs, error) {
	var j Jobs
	return j, c.do(ctx, http.MethodGet, "/admin/jobs", nil, &j)
}

// do sends one request and decodes its JSON answer into v, unless v is
// nil. An answer other than 200 is an error with the daemon's own words,
// wrapping ErrRefused for 401 and 403.
func (c *Client) do(ctx context.Context, method, path string, body []byte, v any) error {
	url := strings.TrimSuffix(c.URL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			err = fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	return nil
}
