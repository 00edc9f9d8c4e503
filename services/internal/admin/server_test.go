package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthEndpoints(t *testing.T) {
	var ready error
	h := Health{
		Live:  func() error { return nil },
		Ready: func(context.Context) error { return ready },
	}
	srv := httptest.NewServer(Handler(Endpoints{Metrics: http.NotFoundHandler(), Health: h}))
	defer srv.Close()

	if err := Check(context.Background(), srv.URL+"/healthz"); err != nil {
		t.Errorf("healthz: %v", err)
	}
	if err := Check(context.Background(), srv.URL+"/readyz"); err != nil {
		t.Errorf("readyz while ready: %v", err)
	}
	ready = errors.New("php-fpm: connection refused")
	err := Check(context.Background(), srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("readyz while unready: %v", err)
	}
	if err := Check(context.Background(), srv.URL+"/debug/pprof/"); err == nil {
		t.Error("pprof served although off")
	}

	withPprof := httptest.NewServer(Handler(Endpoints{Metrics: http.NotFoundHandler(), Health: h, Pprof: true}))
	defer withPprof.Close()
	if err := Check(context.Background(), withPprof.URL+"/debug/pprof/"); err != nil {
		t.Errorf("pprof on: %v", err)
	}
}

func TestCheckPassesTheReasonOn(t *testing.T) {
	srv := httptest.NewServer(Handler(Endpoints{Metrics: http.NotFoundHandler(), Health: Health{
		Live:  func() error { return nil },
		Ready: func(context.Context) error { return errors.New("paused: php-fpm cannot run /app/missing.php") },
	}}))
	defer srv.Close()
	err := Check(context.Background(), srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "/app/missing.php") {
		t.Errorf("Check = %v, want the readiness reason", err)
	}
}
