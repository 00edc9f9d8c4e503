package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/testutil"
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

// closeConns closes the server side of every connection, as a php-fpm
// restart would.
func (l *countingListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// keptClient returns a client keeping up to max connections to a
// net/http/fcgi server that answers "ok".
func keptClient(t *testing.T, max int, idle time.Duration) (*Client, *countingListener) {
	t.Helper()
	ln, addr := listen(t, "unix")
	cl := &countingListener{Listener: ln}
	go fcgi.Serve(cl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	return newClient(t, addr, Options{MaxIdleConns: max, IdleConnTimeout: idle}), cl
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

func idleCount(c *Client) int {
	c.idle.mu.Lock()
	defer c.idle.mu.Unlock()
	return len(c.idle.conns)
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
	if idle := idleCount(c); idle > 2 {
		t.Errorf("%d idle connections kept, want at most 2", idle)
	}
}

func TestKeepAliveClosesIdleConnections(t *testing.T) {
	c, ln := keptClient(t, 2, 50*time.Millisecond)
	get(t, c)
	testutil.Eventually(t, 5*time.Second, "the idle connection closed after its 50ms idle time", func() bool {
		return idleCount(c) == 0
	})
	get(t, c)
	if n := ln.accepted.Load(); n != 2 {
		t.Errorf("a request after the idle time used connection #%d, want a new one (#2)", n)
	}
}

func TestCloseIdleConnections(t *testing.T) {
	c, ln := keptClient(t, 2, time.Minute)
	get(t, c)
	c.CloseIdleConnections()
	if idle := idleCount(c); idle != 0 {
		t.Errorf("%d idle connections after CloseIdleConnections", idle)
	}
	get(t, c)
	if n := ln.accepted.Load(); n != 2 {
		t.Errorf("a request after CloseIdleConnections used connection #%d, want a new one (#2)", n)
	}
	// Without keep-alive there is nothing to close, and no panic.
	newClient(t, "unix:///nowhere.sock", Options{}).CloseIdleConnections()
}

// Every idle connection the server closed (a restart) is caught before a
// request is written to it, and the request goes on a new connection.
func TestKeepAliveSurvivesAServerRestart(t *testing.T) {
	c, ln := keptClient(t, 2, time.Minute)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { get(t, c) })
	}
	wg.Wait()
	before := ln.accepted.Load()
	ln.closeConns()
	get(t, c)
	if n := ln.accepted.Load(); n != before+1 {
		t.Errorf("accepted %d connections after the restart, want 1", n-before)
	}
}

// scriptedServer serves requests on kept connections, calling answer with
// the number of each request (from 1, over all connections); answer writes
// the reply or returns false to close the connection without one, as when
// php-fpm's child is killed mid-job.
func scriptedServer(t *testing.T, answer func(n int64, conn net.Conn) bool) (*fakeServer, *atomic.Int64) {
	var requests atomic.Int64
	srv := serveFake(t, func(conn net.Conn, r *bufio.Reader) {
		for {
			req, err := decodeRequest(r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Errorf("server: %v", err)
				}
				return
			}
			if !answer(requests.Add(1), conn) || !req.keep {
				return
			}
		}
	})
	return srv, &requests
}

func okReply(conn net.Conn) bool {
	_, err := conn.Write(slices.Concat(encodeRecord(typeStdout, requestID, "\r\nok", 0), endRequestRecord(0, 0)))
	return err == nil
}

// A child killed mid-job (the request was read, the connection closed
// without an answer) is an error that is not ErrUnavailable, and the
// request is never sent again, with or without keep-alive.
func TestKilledMidJobIsNotRetried(t *testing.T) {
	for _, mode := range keepAliveModes {
		t.Run(mode.name, func(t *testing.T) {
			kill := int64(1)
			if mode.opts.MaxIdleConns > 0 {
				kill = 2 // the second request, on the kept connection
			}
			srv, requests := scriptedServer(t, func(n int64, conn net.Conn) bool {
				return n != kill && okReply(conn)
			})
			c := newClient(t, srv.addr, mode.opts)
			for n := int64(1); n < kill; n++ {
				if _, err := c.Do(t.Context(), &Request{Params: typicalParams()}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.Do(t.Context(), &Request{Params: typicalParams()})
			if err == nil || errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrProtocol) {
				t.Errorf("got error %v, want ErrProtocol and not ErrUnavailable", err)
			}
			if n := requests.Load(); n != kill {
				t.Errorf("server saw %d requests, want %d: the killed one was sent again", n, kill)
			}
			if n := srv.accepted.Load(); n != 1 && mode.opts.MaxIdleConns > 0 {
				t.Errorf("%d connections, want the kept one only", n)
			}
		})
	}
}

// A kept connection the server closed while idle (a child that reached
// pm.max_requests) is caught before writing: the request goes, once, on a
// new connection.
func TestClosedWhileIdleMovesToNewConnection(t *testing.T) {
	closed := make(chan struct{})
	srv, requests := scriptedServer(t, func(n int64, conn net.Conn) bool {
		if !okReply(conn) {
			return false
		}
		if n == 1 {
			conn.Close()
			close(closed)
		}
		return true
	})
	c := newClient(t, srv.addr, Options{MaxIdleConns: 1, IdleConnTimeout: time.Minute})
	for i := range 2 {
		resp, err := c.Do(t.Context(), &Request{Params: typicalParams()})
		if err != nil || string(resp.Body) != "ok" {
			t.Fatalf("request %d: got %+v, %v", i+1, resp, err)
		}
		<-closed
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestPeerClosed(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		ln, _ := listen(t, network)
		accepted := make(chan net.Conn, 1)
		go func() {
			conn, _ := ln.Accept()
			accepted <- conn
		}()
		conn, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		server := <-accepted
		var check idleCheck
		if check.peerClosed(conn) {
			t.Errorf("%s: an open, quiet connection looks closed", network)
		}
		server.Close()
		// A TCP FIN may take a moment even on loopback.
		testutil.Eventually(t, 5*time.Second, network+": a closed connection looking closed", func() bool {
			return check.peerClosed(conn)
		})
	}
}

func BenchmarkDoUnixKeptAlive(b *testing.B) {
	c := serveFCGI(b, "unix", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Options{MaxIdleConns: 1, IdleConnTimeout: time.Minute})
	req := &Request{Params: cgiParams("GET", "/")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
