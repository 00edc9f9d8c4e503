package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fpmq/fpmq/services/internal/admin"
)

// daemonView is what one daemon said when it was last asked.
type daemonView struct {
	Addr string // its METRICS_ADDR URL, as CONSOLE_DAEMONS names it
	// Err says why its status is missing: unreachable, refused, too slow.
	Err    string
	Status admin.Status
	// Metrics are read from its /metrics; MetricsErr says why not.
	Metrics    daemonMetrics
	MetricsErr string
}

// snapshot is every daemon's answer at one moment.
type snapshot struct {
	At      time.Time
	Daemons []daemonView // in CONSOLE_DAEMONS' order
	// Took is how long asking them all took, concurrently.
	Took time.Duration
}

// daemonSource asks the daemons of CONSOLE_DAEMONS for their status and
// metrics, all at once with a deadline each, and keeps the answers for a
// while so that many browsers polling cost the daemons one request each
// per CONSOLE_CACHE_TTL.
type daemonSource struct {
	addrs   []string
	token   string
	client  *http.Client
	timeout time.Duration // per request
	ttl     time.Duration // how long a snapshot is reused
	now     func() time.Time

	mu   sync.Mutex // held while a snapshot is taken: one at a time
	last snapshot
}

func newDaemonSource(addrs []string, token string, timeout, ttl time.Duration) *daemonSource {
	return &daemonSource{
		addrs: addrs, token: token, timeout: timeout, ttl: ttl, now: time.Now,
		// The daemons are few and asked every few seconds: keep their
		// connections.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}},
	}
}

// Snapshot returns the daemons' answers, at most CONSOLE_CACHE_TTL old.
// Callers arriving while one is taken wait for it rather than ask again.
func (d *daemonSource) Snapshot(ctx context.Context) snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.last.At.IsZero() && d.now().Sub(d.last.At) < d.ttl {
		return d.last
	}
	start := d.now()
	views := make([]daemonView, len(d.addrs))
	var wg sync.WaitGroup
	for i, addr := range d.addrs {
		wg.Go(func() { views[i] = d.ask(ctx, addr) })
	}
	wg.Wait()
	d.last = snapshot{At: d.now(), Daemons: views, Took: d.now().Sub(start)}
	return d.last
}

// forget makes the next Snapshot ask again: after an action, the page
// shows its effect.
func (d *daemonSource) forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = snapshot{}
}

// ask reads one daemon's status and metrics, concurrently.
func (d *daemonSource) ask(ctx context.Context, addr string) daemonView {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	v := daemonView{Addr: addr}
	var wg sync.WaitGroup
	wg.Go(func() {
		st, err := d.admin(addr).Status(ctx)
		if err != nil {
			v.Err = describeDaemonError(err)
			return
		}
		v.Status = st
	})
	wg.Go(func() {
		m, err := d.metrics(ctx, addr)
		if err != nil {
			v.MetricsErr = describeDaemonError(err)
			return
		}
		v.Metrics = m
	})
	wg.Wait()
	return v
}

func (d *daemonSource) admin(addr string) *admin.Client {
	return &admin.Client{URL: addr, Token: d.token, HTTP: d.client}
}

// maxMetricsBytes bounds a daemon's /metrics answer (a few KiB in fact).
const maxMetricsBytes = 4 << 20

// metrics reads and parses a daemon's /metrics.
func (d *daemonSource) metrics(ctx context.Context, addr string) (daemonMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(addr, "/")+"/metrics", nil)
	if err != nil {
		return daemonMetrics{}, err
	}
	// The classic text format, which expfmt's text parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := d.client.Do(req)
	if err != nil {
		return daemonMetrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return daemonMetrics{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, maxMetricsBytes))
}

// describeDaemonError says why a daemon did not answer, in words for the
// page.
func describeDaemonError(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, admin.ErrRefused):
		return "refused the console's token (is ADMIN_TOKEN the daemons'?)"
	}
	return err.Error()
}

// errNoDaemon means no daemon that answered serves the route.
var errNoDaemon = errors.New("no daemon that answers serves this route")

// act runs op on every daemon that serves queue, as the latest snapshot
// tells, concurrently; it returns the addresses of those it reached.
func (d *daemonSource) act(ctx context.Context, queue string, op func(context.Context, *admin.Client) error) ([]string, error) {
	snap := d.Snapshot(ctx)
	var targets []string
	for _, v := range snap.Daemons {
		if v.Err == "" && slices.ContainsFunc(v.Status.Routes, func(r admin.Route) bool { return r.Queue == queue }) {
			targets = append(targets, v.Addr)
		}
	}
	if len(targets) == 0 {
		return nil, errNoDaemon
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, addr := range targets {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, d.timeout)
			defer cancel()
			if err := op(ctx, d.admin(addr)); err != nil {
				errs[i] = fmt.Errorf("%s: %w", addr, err)
			}
		})
	}
	wg.Wait()
	d.forget()
	return targets, errors.Join(errs...)
}

// Pause pauses every daemon of the route queue, giving reason.
func (d *daemonSource) Pause(ctx context.Context, queue, reason string) ([]string, error) {
	return d.act(ctx, queue, func(ctx context.Context, c *admin.Client) error {
		_, err := c.Pause(ctx, reason)
		return err
	})
}

// Resume ends the operator's pause of every daemon of the route queue.
func (d *daemonSource) Resume(ctx context.Context, queue string) ([]string, error) {
	return d.act(ctx, queue, func(ctx context.Context, c *admin.Client) error {
		_, err := c.Resume(ctx)
		return err
	})
}
