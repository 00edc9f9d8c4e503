package broker

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
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
	// still end at the context's deadline.
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
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
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
			t.Errorf("Dial(%q) took %s despite a 300ms deadline", url, elapsed)
		}
	}
}
