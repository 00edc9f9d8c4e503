package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/journal"
)

const testToken = "0123456789abcdef0123456789abcdef"

// fakeOps records what the endpoints asked for.
type fakeOps struct {
	mu     sync.Mutex
	paused bool
	reason string
}

func (f *fakeOps) operations() *Operations {
	state := func(changed bool) Pause {
		return Pause{Paused: f.paused, Changed: changed, Reason: f.reason, State: "consuming"}
	}
	return &Operations{
		Pause: func(reason string) Pause {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.paused {
				return state(false)
			}
			f.paused, f.reason = true, reason
			return state(true)
		},
		Resume: func() Pause {
			f.mu.Lock()
			defer f.mu.Unlock()
			was := f.paused
			f.paused, f.reason = false, ""
			return state(was)
		},
		PauseState: func() Pause {
			f.mu.Lock()
			defer f.mu.Unlock()
			return state(false)
		},
		Status: func(ctx context.Context) Status {
			ready := 7
			return Status{Routes: []Route{{Queue: "commands", Ready: &ready, Unacked: 2}}}
		},
		Jobs: func() Jobs {
			return Jobs{Queue: "commands", Failures: []journal.Failure{{MessageID: "m1", Name: "Mail", Attempt: 2, Outcome: "retried", Stderr: "PHP Warning"}},
				Names: []journal.Name{{Name: "Mail", Succeeded: 3, Failed: 1}}}
		},
	}
}

func opsHandler(token string, log zerolog.Logger) http.Handler {
	return Handler(Endpoints{
		Metrics:    http.NotFoundHandler(),
		Health:     Health{Live: func() error { return nil }, Ready: func(context.Context) error { return nil }},
		Operations: (&fakeOps{}).operations(),
		Token:      token,
		Log:        log,
	})
}

// TestAdminAuthorization sends requests as they arrive from each kind of
// address: the loopback interface, the compose network or the host
// through a published port (Docker's bridge gateway).
func TestAdminAuthorization(t *testing.T) {
	tests := []struct {
		name   string
		token  string // the daemon's ADMIN_TOKEN
		from   string // the request's remote address
		host   string // its Host header
		header map[string]string
		want   int
	}{
		{"loopback without a token", "", "127.0.0.1:40000", "127.0.0.1:9090", nil, http.StatusOK},
		{"loopback with a token set", testToken, "127.0.0.1:40000", "127.0.0.1:9090", nil, http.StatusOK},
		{"IPv6 loopback, localhost", "", "[::1]:40000", "localhost:9090", nil, http.StatusOK},
		{"loopback under another name (DNS rebinding)", testToken, "127.0.0.1:40000", "evil.example:9090", nil, http.StatusUnauthorized},
		{"network, no token set on the daemon", "", "172.18.0.1:40000", "127.0.0.1:9090", map[string]string{"Authorization": "Bearer " + testToken}, http.StatusForbidden},
		{"network without a token", testToken, "172.18.0.1:40000", "daemon:9090", nil, http.StatusUnauthorized},
		{"network with the wrong token", testToken, "172.18.0.1:40000", "daemon:9090", map[string]string{"Authorization": "Bearer " + testToken[1:]}, http.StatusForbidden},
		{"network with another scheme", testToken, "172.18.0.1:40000", "daemon:9090", map[string]string{"Authorization": "Basic " + testToken}, http.StatusUnauthorized},
		{"network with the token", testToken, "172.18.0.1:40000", "daemon:9090", map[string]string{"Authorization": "Bearer " + testToken}, http.StatusOK},
		{"network with the token, scheme in lower case", testToken, "172.18.0.1:40000", "daemon:9090", map[string]string{"Authorization": "bearer " + testToken}, http.StatusOK},
		{"cross-site browser request to loopback", "", "127.0.0.1:40000", "127.0.0.1:9090", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := opsHandler(tc.token, zerolog.New(&logs))
			for _, path := range []string{"/admin/pause", "/admin/resume"} {
				req := httptest.NewRequest(http.MethodPost, "http://"+tc.host+path, nil)
				req.RemoteAddr, req.Host = tc.from, tc.host
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("POST %s: %d %s, want %d", path, rec.Code, rec.Body.String(), tc.want)
				}
				if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("POST %s: 401 without WWW-Authenticate", path)
				}
			}
			if tc.want == http.StatusUnauthorized || (tc.want == http.StatusForbidden && tc.header["Sec-Fetch-Site"] == "") {
				if !strings.Contains(logs.String(), "admin request refused") || !strings.Contains(logs.String(), tc.from) {
					t.Errorf("refusal not logged with the address:\n%s", logs.String())
				}
				if strings.Contains(logs.String(), testToken[4:]) {
					t.Errorf("the log shows the token:\n%s", logs.String())
				}
			}
		})
	}
}

func TestAdminPauseRequests(t *testing.T) {
	h := opsHandler("", zerolog.Nop())
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:9090"+path, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"not JSON", "reason=x", http.StatusBadRequest},
		{"a reason too long", `{"reason":"` + strings.Repeat("x", maxReasonBytes+1) + `"}`, http.StatusBadRequest},
		{"a reason of two lines", `{"reason":"a\nb"}`, http.StatusBadRequest},
		{"a body too large", `{"reason":"x","pad":"` + strings.Repeat(" ", maxBodyBytes) + `"}`, http.StatusBadRequest},
	} {
		if rec := post("/admin/pause", tc.body); rec.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body.String(), tc.want)
		}
	}
	if rec := post("/admin/pause", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"changed": true`) {
		t.Errorf("pause without a body: %d %s", rec.Code, rec.Body.String())
	}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9090/admin/resume", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /admin/resume: %d, want 405", rec.Code)
	}

	withoutOps := Handler(Endpoints{Metrics: http.NotFoundHandler()})
	rec = httptest.NewRecorder()
	withoutOps.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/status", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/admin/status without operations: %d, want 404", rec.Code)
	}
}

// TestClient drives the endpoints with the client the daemon's commands
// use, from loopback and, with the remote address rewritten, from another
// host.
func TestClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv := httptest.NewServer(opsHandler(testToken, zerolog.Nop()))
	defer srv.Close()
	c := &Client{URL: srv.URL}

	p, err := c.Pause(ctx, "db migration")
	if err != nil || !p.Paused || !p.Changed || p.Reason != "db migration" {
		t.Fatalf("Pause = %+v, %v; want paused now with the reason", p, err)
	}
	if p, err = c.Pause(ctx, "again"); err != nil || p.Changed || p.Reason != "db migration" {
		t.Errorf("second Pause = %+v, %v; want no change", p, err)
	}
	if p, err = c.PauseState(ctx); err != nil || !p.Paused {
		t.Errorf("PauseState = %+v, %v; want paused", p, err)
	}
	if p, err = c.Resume(ctx); err != nil || p.Paused || !p.Changed {
		t.Errorf("Resume = %+v, %v; want resumed now", p, err)
	}
	s, err := c.Status(ctx)
	if err != nil || len(s.Routes) != 1 || *s.Routes[0].Ready != 7 || s.Routes[0].Unacked != 2 || s.Routes[0].Delayed != nil {
		t.Errorf("Status = %+v, %v", s, err)
	}

	j, err := c.Jobs(ctx)
	if err != nil || j.Queue != "commands" || len(j.Failures) != 1 || j.Failures[0].Stderr != "PHP Warning" || len(j.Names) != 1 || j.Names[0].Succeeded != 3 {
		t.Errorf("Jobs = %+v, %v", j, err)
	}

	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = "172.18.0.1:40000"
		opsHandler(testToken, zerolog.Nop()).ServeHTTP(w, r)
	}))
	defer remote.Close()
	_, err = (&Client{URL: remote.URL}).Status(ctx)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "401") {
		t.Errorf("Status from another host without the token: %v, want refused with 401", err)
	}
	if _, err = (&Client{URL: remote.URL, Token: testToken}).Status(ctx); err != nil {
		t.Errorf("Status from another host with the token: %v", err)
	}
}
