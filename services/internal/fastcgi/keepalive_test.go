package fastcgi

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts accepted connections and can close them all.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *countingListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func keptClient(t *testing.T, max int, idle time.Duration) (*Client, *countingListener) {
	t.Helper()
	ln, addr := listen(t, "unix")
	cl := &countingListener{Listener: ln}
	go fcgi.Serve(cl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	c := newClient(t, addr)
	c.KeepAlive(max, idle)
	t.Cleanup(c.CloseIdle)
	return c, cl
}

func get(t *testing.T, c *Client) {
	t.Helper()
	resp, err := c.Do(context.Background(), &Request{Params: cgiParams("GET", "/")})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Status != 200 || string(resp.Body) != "ok" {
		t.Fatalf("answer %d %q", resp.Status, resp.Body)
	}
}

func TestKeepAliveReusesConnections(t *testing.T) {
	c, ln := keptClient(t, 2, time.Minute)
	for range 20 {
		get(t, c)
	}
	if n := ln.accepted.Load(); n != 1 {
		t.Errorf("20 sequential requests used %d connections, want 1", n)
	}

	// Concurrent requests open more, but no more than max stay idle.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { get(t, c) })
	}
	wg.Wait()
	c.mu.Lock()
	idle := len(c.idle)
	c.mu.Unlock()
	if idle > 2 {
		t.Errorf("%d idle connections kept, want at most 2", idle)
	}
}

func TestKeepAliveClosesIdleConnections(t *testing.T) {
	c, ln := keptClient(t, 2, 50*time.Millisecond)
	get(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		idle := len(c.idle)
		c.mu.Unlock()
		if idle == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle connection still kept after 5s with a 50ms idle time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	get(t, c)
	if n := ln.accepted.Load(); n != 2 {
		t.Errorf("a request after the idle time used connection #%d, want a new one (#2)", n)
	}
}

// A kept connection the server closed meanwhile is replaced, and the
// request still succeeds.
func TestKeepAliveSurvivesAServerClose(t *testing.T) {
	c, ln := keptClient(t, 1, time.Minute)
	get(t, c)
	ln.closeConns()
	get(t, c)
	if n := ln.accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2", n)
	}
}

func BenchmarkDoUnixKeptAlive(b *testing.B) {
	c := serveFCGI(b, "unix", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c.KeepAlive(1, time.Minute)
	defer c.CloseIdle()
	req := &Request{Params: cgiParams("GET", "/")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
