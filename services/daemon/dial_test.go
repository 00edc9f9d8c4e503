package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fpmq/fpmq/services/internal/amqptest"
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
	stderr, stop := startDaemon(t, clientCertHint)
	if code := stop(); code != 0 {
		t.Errorf("exit %d, want 0; log:\n%s", code, stderr.String())
	}

	t.Run("daemon dead", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"dead", "list"}, nil, &out, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), clientCertHint) {
			t.Errorf("daemon dead list: exit %d, stderr %q; want 1 and %q", code, errOut.String(), clientCertHint)
		}
	})
}
