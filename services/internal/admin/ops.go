package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/journal"
)

// Pause is the operator's pause of consumption, as the admin endpoints
// report it after each request.
type Pause struct {
	// Paused is true while an operator's pause lasts.
	Paused bool `json:"paused"`
	// Changed is true when this request paused or resumed; false when it
	// found the pause as it asked (a second pause keeps the first reason).
	Changed bool      `json:"changed"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// State is the consumer's: consuming, paused, connecting or stopped.
	State string `json:"state"`
	// PoolPause says why consumption is paused for php-fpm, if it is: an
	// operator's resume does not end that pause.
	PoolPause string `json:"pool_pause,omitempty"`
	// Running counts the jobs being handled; Held, the deliveries the
	// daemon holds from the broker, running ones included. A paused daemon
	// holds none once its running jobs finished.
	Running int64 `json:"running"`
	Held    int64 `json:"held"`
}

// Status is what `daemon status` shows: one Route per job queue the daemon
// consumes (one today).
type Status struct {
	Routes []Route `json:"routes"`
	// BrokerAt is when RabbitMQ's figures were read; BrokerError says why
	// they are missing or old.
	BrokerAt    time.Time `json:"broker_figures_at,omitzero"`
	BrokerError string    `json:"broker_error,omitempty"`
}

// Route is one job queue and its retry and dead-letter queues. Figures
// from RabbitMQ are nil when it could not be asked.
type Route struct {
	Queue string `json:"queue"`
	Pause
	// Ready is the job queue's messages waiting for a consumer, as
	// RabbitMQ says.
	Ready *int `json:"ready"`
	// Unacked is this daemon's deliveries not yet settled: RabbitMQ does
	// not tell a client its own count (Pause.Held, under its name in the
	// RabbitMQ vocabulary).
	Unacked int64 `json:"unacked"`
	// Retry lists each retry queue and the jobs waiting in it for their
	// next attempt, shortest delay first.
	Retry []RetryQueue `json:"retry"`
	// Delayed is the jobs published with a delay that wait in the delay
	// queues, not due yet; nil when RabbitMQ was not asked.
	Delayed *int `json:"delayed"`
	// DelayQueues lists each delay queue and the jobs waiting in it,
	// shortest delay first: a job waits in the longest one not above the
	// time left until it is due, then in shorter ones.
	DelayQueues []RetryQueue `json:"delay_queues"`
	Dead        *int         `json:"dead"`
	Consumers   *int         `json:"consumers"`
	// Rates of succeeded and failed (retried or dead-lettered) jobs per
	// second, counted by this daemon over the last RateSeconds.
	SucceededPerSecond float64 `json:"succeeded_per_second"`
	FailedPerSecond    float64 `json:"failed_per_second"`
	RateSeconds        float64 `json:"rate_window_seconds"`
}

// RetryQueue is one retry or delay queue of a route.
type RetryQueue struct {
	Queue string `json:"queue"`
	Delay string `json:"delay"`
	Ready *int   `json:"ready"`
}

// Operations are what the admin endpoints do; the daemon provides them.
type Operations struct {
	// Pause pauses consumption for an operator, or finds it paused.
	Pause func(reason string) Pause
	// Resume ends an operator's pause, if there is one.
	Resume func() Pause
	// PauseState reports the operator's pause, changing nothing.
	PauseState func() Pause
	// Status reads the figures of `daemon status`, asking RabbitMQ before
	// ctx is done.
	Status func(ctx context.Context) Status
	// Jobs reports the recent failed attempts and the figures per job
	// name; nil answers 404.
	Jobs func() Jobs
}

// Jobs is what GET /admin/jobs answers: the daemon's journal of its route.
type Jobs struct {
	Queue string `json:"queue"`
	// Failures are the last failed attempts, the newest first, at most
	// JOURNAL_FAILURES of them.
	Failures []journal.Failure `json:"failures"`
	// Names are the figures of each job name since the daemon started.
	Names []journal.Name `json:"names"`
}

// Limits of the admin endpoints.
const (
	statusTimeout  = 10 * time.Second // one status, RabbitMQ asked included
	maxReasonBytes = 200              // a pause's reason
	maxBodyBytes   = 4 << 10          // a request's body
)

// handleOperations serves the admin endpoints on mux, each authorized by
// authorize.
func handleOperations(mux *http.ServeMux, ops Operations, token string, log zerolog.Logger) {
	// A browser on the daemon's host could be made to post to a loopback
	// address by any web page: those requests are refused.
	csrf := http.NewCrossOriginProtection()
	guard := func(h http.HandlerFunc) http.Handler {
		return authorize(token, log, csrf.Handler(h))
	}
	mux.Handle("GET /admin/pause", guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ops.PauseState())
	}))
	mux.Handle("POST /admin/pause", guard(func(w http.ResponseWriter, r *http.Request) {
		reason, err := readReason(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, ops.Pause(reason))
	}))
	mux.Handle("POST /admin/resume", guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ops.Resume())
	}))
	mux.Handle("GET /admin/jobs", guard(func(w http.ResponseWriter, r *http.Request) {
		if ops.Jobs == nil {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, ops.Jobs())
	}))
	mux.Handle("GET /admin/status", guard(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
		defer cancel()
		writeJSON(w, ops.Status(ctx))
	}))
}

// PauseRequest is the optional JSON body of POST /admin/pause.
type PauseRequest struct {
	Reason string `json:"reason"`
}

// readReason reads the reason of a pause from the request's JSON body,
// which may be empty.
func readReason(w http.ResponseWriter, r *http.Request) (string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	var req PauseRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return "", fmt.Errorf(`want a JSON body {"reason": "..."} or none: %w`, err)
		}
	}
	reason := strings.TrimSpace(req.Reason)
	if len(reason) > maxReasonBytes {
		return "", fmt.Errorf("reason: at most %d bytes, got %d", maxReasonBytes, len(reason))
	}
	// The reason goes into /readyz's one line of text.
	if strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return "", errors.New("reason: no control characters (newlines, tabs)")
	}
	return reason, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a write error means the client went away
}

// authorize lets a request through when it comes from a loopback address
// and names a loopback host, or when it carries the bearer token. With no
// token, only loopback may.
func authorize(token string, log zerolog.Logger, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from := r.RemoteAddr
		if fromLoopback(r) {
			next.ServeHTTP(w, r)
			return
		}
		given, hasToken := bearer(r)
		switch {
		case token == "":
			log.Warn().Str("from", from).Str("path", r.URL.Path).Msg("admin request refused: not from loopback, and ADMIN_TOKEN is not set")
			http.Error(w, "admin endpoints answer only on the loopback interface unless ADMIN_TOKEN is set", http.StatusForbidden)
		case !hasToken:
			log.Warn().Str("from", from).Str("path", r.URL.Path).Msg("admin request refused: no token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="fpmq"`)
			http.Error(w, "admin endpoints need Authorization: Bearer ADMIN_TOKEN from this address", http.StatusUnauthorized)
		case !equalToken(want, given):
			log.Warn().Str("from", from).Str("path", r.URL.Path).Msg("admin request refused: wrong token")
			http.Error(w, "wrong admin token", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// equalToken compares in constant time. Both sides are hashed first, so
// that the time says nothing about the token's length either.
func equalToken(want [sha256.Size]byte, given string) bool {
	got := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// fromLoopback reports whether a request came from a loopback address to a
// loopback host name. The host is checked too because a web page can point
// a name of its own at 127.0.0.1 (DNS rebinding) and have a browser on the
// daemon's host send requests that look the same.
func fromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && addr.Unmap().IsLoopback()
}
