package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// validConfig is a configuration that passes validate.
func validConfig() config {
	return config{
		OperatorUser: "operator", OperatorPassword: operatorPassword, ViewerUser: "viewer", ViewerPassword: viewerPassword,
		SessionTTL: time.Hour, DaemonTimeout: time.Second, RefreshInterval: time.Second, ConnectTimeout: time.Second,
		PublishTimeout: time.Second, DeadPageSize: 50, DeadScan: 5000, SignInBurst: 5, SignInInterval: 12 * time.Second,
		Daemons: []string{"http://daemon:9090"}, AdminToken: "0123456789abcdef",
		HistoryStep: 15 * time.Second, HistoryKeep: 6 * time.Hour,
	}
}

func TestValidate(t *testing.T) {
	if err := validConfig().validate(); err != nil {
		t.Fatalf("a valid configuration: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*config)
		want   string // the variable the error names
	}{
		{"no password at all", func(c *config) { c.OperatorPassword, c.ViewerPassword = "", "" }, "CONSOLE_OPERATOR_PASSWORD and CONSOLE_VIEWER_PASSWORD"},
		{"a short password", func(c *config) { c.ViewerPassword = "short" }, "CONSOLE_VIEWER_PASSWORD"},
		{"one name for both", func(c *config) { c.ViewerUser = "operator" }, "CONSOLE_VIEWER_USER"},
		{"a certificate without its key", func(c *config) { c.TLSCertFile = "cert.pem" }, "CONSOLE_TLS_CERT_FILE"},
		{"a daemon that is no URL", func(c *config) { c.Daemons = []string{"daemon:9090"} }, "CONSOLE_DAEMONS"},
		{"daemons without the token", func(c *config) { c.AdminToken = "" }, "ADMIN_TOKEN"},
		{"a page of nothing", func(c *config) { c.DeadPageSize = 0 }, "CONSOLE_DEAD_PAGE_SIZE"},
		{"a scan shorter than a page", func(c *config) { c.DeadScan = 10 }, "CONSOLE_DEAD_SCAN"},
		{"no session", func(c *config) { c.SessionTTL = 0 }, "CONSOLE_SESSION_TTL"},
		{"a negative burst", func(c *config) { c.SignInBurst = -1 }, "CONSOLE_SIGNIN_BURST"},
		{"no sign-in interval", func(c *config) { c.SignInInterval = 0 }, "CONSOLE_SIGNIN_INTERVAL"},
		{"a history step under a second", func(c *config) { c.HistoryStep = time.Millisecond }, "CONSOLE_HISTORY_STEP"},
		{"a history under an hour", func(c *config) { c.HistoryKeep = 30 * time.Minute }, "CONSOLE_HISTORY_KEEP"},
		{"too many points", func(c *config) { c.HistoryStep, c.HistoryKeep = time.Second, 24*time.Hour }, "CONSOLE_HISTORY_KEEP / CONSOLE_HISTORY_STEP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			err := c.validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestRunExitStatus(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "CONSOLE_OPERATOR_PASSWORD") {
		t.Errorf("-h: exit %d, want 0 and the settings", code)
	}
	if code := run(context.Background(), []string{"serve"}, &out, &errOut); code != 2 {
		t.Errorf("an unknown argument: exit %d, want 2", code)
	}
	t.Setenv("AMQP_URL", "amqp://console:secret@rabbitmq:5672/fpmq")
	t.Setenv("CONSOLE_OPERATOR_PASSWORD", "")
	t.Setenv("CONSOLE_VIEWER_PASSWORD", "")
	errOut.Reset()
	if code := run(context.Background(), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "nobody could sign in") || strings.Contains(errOut.String(), "secret") {
		t.Errorf("no passwords: exit %d, %q; want 2 and a message without the AMQP password", code, errOut.String())
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	c := validConfig()
	c.Addr, c.Daemons, c.LogLevel = "127.0.0.1:0", nil, "info"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, testLogger(t)) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s of its context's end")
	}
}
