// Package admin serves the daemon's HTTP endpoints for operators and
// orchestrators: Prometheus metrics, liveness, readiness, the operators'
// pause, resume and status and, when asked for, Go's profiles. It also
// holds the client side of the health check and of the operators'
// commands.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
)

// readyTimeout bounds one readiness check, which may ping php-fpm.
const readyTimeout = 3 * time.Second

// Health answers the health endpoints.
type Health struct {
	// Live returns nil while the daemon's loops run.
	Live func() error
	// Ready returns nil when the daemon can do its work, or an error
	// saying why not.
	Ready func(ctx context.Context) error
}

// Endpoints are what Handler serves.
type Endpoints struct {
	Metrics http.Handler
	Health  Health
	// Operations, unless nil, are served under /admin/: GET and POST
	// /admin/pause, POST /admin/resume, GET /admin/status. Requests from
	// a loopback address may use them; others need Token as a bearer
	// token, and none may when Token is empty.
	Operations *Operations
	Token      string
	// Pprof serves Go's profiles under /debug/pprof/.
	Pprof bool
	// Log gets the admin requests refused.
	Log zerolog.Logger
}

// Handler serves metrics at /metrics, /healthz (liveness) and /readyz
// (readiness): 200 "ok", or 503 "not ok: REASON", and the operations of e.
func Handler(e Endpoints) http.Handler {
	h := e.Health
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", e.Metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		answer(w, h.Live())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		answer(w, h.Ready(ctx))
	})
	if e.Operations != nil {
		handleOperations(mux, *e.Operations, e.Token, e.Log)
	}
	if e.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func answer(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ok: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// shutdownTimeout bounds the wait for requests in progress when Serve stops.
const shutdownTimeout = 5 * time.Second

// Serve serves handler on ln until ctx is done, then shuts the server down.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, log zerolog.Logger) error {
	addr := ln.Addr().String()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	log.Info().Str("addr", addr).Msg("serving metrics, health and admin endpoints")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down %s: %w", addr, err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Check asks a health endpoint and returns nil if it answered 200, or an
// error with the endpoint's own reason. It is what `daemon healthcheck`
// runs, since the image has no other tools.
func Check(ctx context.Context, url string) error {
	return (&Client{URL: url}).do(ctx, http.MethodGet, "", nil, nil)
}
