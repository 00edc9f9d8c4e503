package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/testutil"
)

// clientCertHint is what the daemon adds when a broker that requires a
// client certificate drops the connection of one without.
const clientCertHint = "the broker closed the TLS connection: it may require a client certificate (AMQP_CERT_FILE/AMQP_KEY_FILE)"

// A broker that wants a client certificate resets the connection of a
// daemon that has none: the daemon says what is likely wrong, not only
// "connection reset by peer", and keeps retrying until it is stopped.
func TestSaysAClientCertificateMayBeMissing(t *testing.T) {
	addr, caFile := amqptest.RequireClientCert(t, amqptest.Reset)
	t.Setenv("AMQP_URL", "amqps://u:secret@"+addr+"/")
	t.Setenv("AMQP_CA_FILE", caFile)
	t.Setenv("LOG_FORMAT", "json")
	t.Setenv("CONNECT_TIMEOUT", "2s")
	t.Setenv("METRICS_ADDR", freeAddr(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	var stderr syncBuffer
	done := make(chan int, 1) // the daemon ends, at the deferred cancel, even if the test stopped
	go func() { done <- run(ctx, nil, nil, &stdout, &stderr) }()

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", stderr.String())
		}
	})
	testutil.Eventually(t, 5*time.Second, "the hint about the client certificate in the log", func() bool {
		return strings.Contains(stderr.String(), clientCertHint)
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("daemon did not stop within 5s of cancellation")
	}

	t.Run("daemon dead", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"dead", "list"}, nil, &out, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), clientCertHint) {
			t.Errorf("daemon dead list: exit %d, stderr %q; want 1 and %q", code, errOut.String(), clientCertHint)
		}
	})
}
