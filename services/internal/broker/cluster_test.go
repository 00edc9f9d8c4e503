package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/amqptest"
)

func TestParseAddresses(t *testing.T) {
	const base = "amqps://user:secret@rabbitmq:5671/fpmq?heartbeat=5"
	for _, tc := range []struct {
		name, url, addresses string
		want                 []string
		err                  string
	}{
		{"empty: the URL alone", base, "", []string{base}, ""},
		{"blank: the URL alone", base, "  ", []string{base}, ""},
		{"each host replaces the URL's, the rest kept", base, "rabbitmq-1:5671, rabbitmq-2:5672,10.0.0.3:5671,[::1]:5671", []string{
			"amqps://user:secret@rabbitmq-1:5671/fpmq?heartbeat=5",
			"amqps://user:secret@rabbitmq-2:5672/fpmq?heartbeat=5",
			"amqps://user:secret@10.0.0.3:5671/fpmq?heartbeat=5",
			"amqps://user:secret@[::1]:5671/fpmq?heartbeat=5",
		}, ""},
		{"no port", base, "rabbitmq-1:5671,rabbitmq-2", nil, `entry 2 "rabbitmq-2": want HOST:PORT`},
		{"no host", base, ":5672", nil, `entry 1 ":5672": want HOST:PORT`},
		{"empty entry", base, "a:1,,b:2", nil, `entry 2 "": want HOST:PORT`},
		{"bad port", base, "a:0", nil, `entry 1 "a:0": port must be 1 to 65535`},
		{"named port", base, "a:amqp", nil, `entry 1 "a:amqp": port must be 1 to 65535`},
		{"twice", base, "a:1,A:1", nil, `entry 2 "A:1": listed twice`},
		{"not an AMQP URL", "http://user:secret@host/", "a:1", nil, "the URL is not an amqp:// or amqps:// URL with a host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAddresses(tc.url, tc.addresses)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	if _, err := ParseAddresses("amqp://u:secret@host:5672/", "a"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("ParseAddresses error %v: want one without the password", err)
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentPort returns a loopback address that accepts connections and never
// answers, as a node behind a network partition seems to, and a channel
// that receives a value each time it accepts one.
func silentPort(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepts := make(chan struct{}, 16)
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			select {
			case accepts <- struct{}{}:
			default:
			}
		}
	}()
	return ln.Addr().String(), accepts
}

func newCluster(t *testing.T, url, addresses string) *Cluster {
	t.Helper()
	urls, err := ParseAddresses(url, addresses)
	if err != nil {
		t.Fatal(err)
	}
	return NewCluster(urls, nil)
}

func dialCluster(t *testing.T, c *Cluster, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := c.Dial(ctx)
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { conn.Close() })
	return conn.RemoteAddr().String(), nil
}

func TestClusterDialMovesOnFromAFailedNode(t *testing.T) {
	a, b := amqptest.NewServer(t), amqptest.NewServer(t)
	down := closedPort(t)
	c := newCluster(t, "amqp://guest:guest@localhost:5672/", down+","+a.Addr+","+b.Addr)

	// The first node refuses: the second takes the connection, and the
	// next one too, so that a process's connections share a node.
	for range 2 {
		got, err := dialCluster(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got != a.Addr {
			t.Fatalf("connected to %s, want %s (the first node that answers)", got, a.Addr)
		}
	}
	if node := c.Node(); node != a.Addr {
		t.Errorf("Node() = %q, want %s", node, a.Addr)
	}
	if n := a.Connections(); n != 2 {
		t.Errorf("node a accepted %d connections, want 2", n)
	}

	// Node a goes away: its connections close, and the next dial goes to
	// b first, without trying a again.
	a.Close()
	amqptest.WaitFor(t, "node a's connections closed", func() bool { return c.last.IsClosed() })
	got, err := dialCluster(t, c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got != b.Addr {
		t.Fatalf("after node a went away, connected to %s, want %s", got, b.Addr)
	}

	// b goes away too: the dial goes round, past the refusing nodes, and
	// says what each one did.
	b.Close()
	amqptest.WaitFor(t, "node b's connections closed", func() bool { return c.last.IsClosed() })
	_, err = dialCluster(t, c, 5*time.Second)
	var ce *ClusterError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *ClusterError", err)
	}
	if len(ce.Errs) != 3 {
		t.Errorf("%d nodes tried, want 3: %v", len(ce.Errs), err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "no broker reached, 3 nodes tried: ") || strings.Contains(msg, "guest:guest") {
		t.Errorf("error %q: want one that starts with the count and hides the password", msg)
	}
	for _, addr := range []string{down, a.Addr, b.Addr} {
		if !strings.Contains(msg, "amqp://guest:xxxxx@"+addr+"/") {
			t.Errorf("error %q does not name node %s", msg, addr)
		}
	}
}

// TestClusterDialSharesTheTimeAmongNodes: a node that never answers gets
// its share of the time, and the next node the rest. The nodes are
// stand-ins for Dial and the clock is synctest's, so that the shares are
// exact and waiting them out takes no time.
func TestClusterDialSharesTheTimeAmongNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type attempt struct {
			node            string
			began, deadline time.Time
		}
		var attempts []attempt
		live := new(amqp.Connection)
		c := newCluster(t, "amqp://guest:guest@localhost:5672/", "silent:5672,live:5672")
		c.dial = func(ctx context.Context, rawURL string, _ *tls.Config) (*amqp.Connection, error) {
			deadline, _ := ctx.Deadline()
			u, _ := url.Parse(rawURL)
			attempts = append(attempts, attempt{u.Hostname(), time.Now(), deadline})
			if u.Hostname() == "silent" {
				<-ctx.Done() // as Dial does at a node behind a partition
				return nil, fmt.Errorf("connect to %s: %w", Redact(rawURL), ctx.Err())
			}
			return live, nil
		}

		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
		defer cancel()
		conn, err := c.Dial(ctx)
		if err != nil || conn != live {
			t.Fatalf("Dial = %p, %v; want the live node's connection: the silent first node used up the time", conn, err)
		}
		want := []attempt{
			{"silent", start, start.Add(2 * time.Second)},                    // half of the 4 s
			{"live", start.Add(2 * time.Second), start.Add(4 * time.Second)}, // the rest
		}
		if !slices.EqualFunc(attempts, want, func(a, b attempt) bool {
			return a.node == b.node && a.began.Equal(b.began) && a.deadline.Equal(b.deadline)
		}) {
			t.Errorf("attempts (node, began, deadline)\n  %v\nwant\n  %v", attempts, want)
		}
	})
}

// TestClusterDialStopsAtTheDeadline cancels the dial while the first of two
// silent nodes holds it: Dial returns at once, says how far it got and
// wraps the context's error.
func TestClusterDialStopsAtTheDeadline(t *testing.T) {
	first, accepted := silentPort(t)
	second, _ := silentPort(t)
	c := newCluster(t, "amqp://guest:guest@localhost:5672/", first+","+second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dialed := make(chan error, 1)
	go func() {
		conn, err := c.Dial(ctx)
		if err == nil {
			conn.Close()
		}
		dialed <- err
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the first node never saw the dial")
	}
	cancel()
	cancelled := time.Now()
	var err error
	select {
	case err = <-dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("Dial did not return 5 s after its context was cancelled")
	}
	if elapsed := time.Since(cancelled); elapsed > 3*time.Second {
		t.Errorf("Dial took %s after its context was cancelled", elapsed)
	}
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "1 of 2 nodes tried before context canceled") {
		t.Errorf("error %q does not say how far it got", err)
	}
}

func TestClusterOfOneIsDial(t *testing.T) {
	c := newCluster(t, "amqp://u:secret@127.0.0.1:1/", "")
	if got := strings.Join(c.Nodes(), " "); got != "amqp://u:xxxxx@127.0.0.1:1/" {
		t.Errorf("Nodes() = %q", got)
	}
	_, err := dialCluster(t, c, 2*time.Second)
	want := "connect to amqp://u:xxxxx@127.0.0.1:1/: no broker at 127.0.0.1:1"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want Dial's: %s...", err, want)
	}
}
