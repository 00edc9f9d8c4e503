package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// healthConfig is what "console healthcheck" reads: where the console
// listens, and whether over TLS.
type healthConfig struct {
	Addr        string `envconfig:"CONSOLE_ADDR" default:"127.0.0.1:8080"`
	TLSCertFile string `envconfig:"CONSOLE_TLS_CERT_FILE"`
}

// healthTimeout bounds the health check's request.
const healthTimeout = 3 * time.Second

// healthcheck asks the running console's sign-in page on the loopback
// interface, as a container health check: the image has no other tool.
// It returns 0 when the page answers 200, else 1.
func healthcheck(ctx context.Context, stderr io.Writer) int {
	var c healthConfig
	if err := envconfig.Process("", &c); err != nil {
		fmt.Fprintf(stderr, "console healthcheck: %v\n", err)
		return 1
	}
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "console healthcheck: CONSOLE_ADDR %q: %v\n", c.Addr, err)
		return 1
	}
	scheme := "http"
	client := &http.Client{Timeout: healthTimeout}
	if c.TLSCertFile != "" {
		// The certificate names the console's public host, not the
		// loopback address asked here: only that it answers matters.
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback health check
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://127.0.0.1:"+port+"/signin", nil)
	if err != nil {
		fmt.Fprintf(stderr, "console healthcheck: %v\n", err)
		return 1
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "console healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "console healthcheck: %s\n", resp.Status)
		return 1
	}
	return 0
}
