package broker

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/amqptest"
	"github.com/fpmq/fpmq/services/internal/testutil"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"amqp://user:secret@host:5672/", "amqp://user:xxxxx@host:5672/"},
		{"amqp://host/", "amqp://host/"},
		{"amqp://user:sec%zzret@host/", "(unparsable AMQP URL)"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDialErrorsHideThePassword(t *testing.T) {
	// A listener that accepts and never speaks AMQP: the handshake must
	// still end at the context's deadline, short so that the test does not
	// wait long for it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	for _, url := range []string{
		"amqp://user:secret@127.0.0.1:1/",                     // refused
		"amqp://user:secret@" + silent.Addr().String() + "/",  // silent
		"amqps://user:secret@" + silent.Addr().String() + "/", // silent in the TLS handshake
		"amqp://user:sec%zzret@127.0.0.1:1/",                  // unparsable
		"http://user:secret@127.0.0.1:1/",                     // wrong scheme
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		conn, err := Dial(ctx, url, nil)
		cancel()
		if err == nil {
			conn.Close()
			t.Fatalf("Dial(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sec%zzret") {
			t.Errorf("Dial(%q) error shows the password: %v", url, err)
		}
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("Dial(%q) took %s despite a 50ms deadline", url, elapsed)
		}
	}
}

// TestDialExplains checks that Dial says what is likely wrong when the
// error alone names only a symptom.
func TestDialExplains(t *testing.T) {
	resetAddr, resetCA := amqptest.RequireClientCert(t, amqptest.Reset)
	alertAddr, alertCA := amqptest.RequireClientCert(t, amqptest.Alert)
	stranger := testutil.NewCA(t).Client("fpmq-client")
	strangerCert, strangerKey := stranger.File(), stranger.KeyFile()
	for _, tc := range []struct {
		name, url string
		files     TLSFiles
		want      string
	}{
		{"no client certificate, reset", "amqps://u:secret@" + resetAddr + "/", TLSFiles{CAFile: resetCA},
			"the broker closed the TLS connection: it may require a client certificate (AMQP_CERT_FILE/AMQP_KEY_FILE): "},
		{"no client certificate, alert", "amqps://u:secret@" + alertAddr + "/", TLSFiles{CAFile: alertCA},
			"the broker closed the TLS connection: it may require a client certificate (AMQP_CERT_FILE/AMQP_KEY_FILE): "},
		{"client certificate refused", "amqps://u:secret@" + alertAddr + "/", TLSFiles{CAFile: alertCA, CertFile: strangerCert, KeyFile: strangerKey},
			"it may not accept the client certificate (AMQP_CERT_FILE)"},
		{"nothing listens", "amqp://u:secret@127.0.0.1:1/", TLSFiles{},
			"connect to amqp://u:xxxxx@127.0.0.1:1/: no broker at 127.0.0.1:1 (is RabbitMQ running, and is the host right?): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.files.Config()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := Dial(ctx, tc.url, cfg)
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dial error\n  %v\ndoes not say\n  %s", err, tc.want)
			}
			if ctx.Err() != nil {
				t.Errorf("Dial ran into its deadline: %v", err)
			}
		})
	}
}
