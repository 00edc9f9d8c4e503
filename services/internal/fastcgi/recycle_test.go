package fastcgi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitReadable blocks until conn has data to read, without consuming any,
// so that a test server can close a socket with a request unread in it.
func waitReadable(conn net.Conn) {
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return
	}
	var buf [1]byte
	raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		return !errors.Is(err, syscall.EAGAIN)
	})
}

// recyclingServer answers the first request on its first connection, then
// ends that connection as end says, once the client wrote its next request
// on it; every later connection is served normally. run counts the
// requests whose script would have run: read whole and answered, or read
// whole and then died on.
func recyclingServer(t *testing.T, network string, end func(conn net.Conn, r *bufio.Reader, run *atomic.Int64)) (srv *fakeServer, run *atomic.Int64) {
	run = new(atomic.Int64)
	var first atomic.Bool
	srv = serveFakeOn(t, network, func(conn net.Conn, r *bufio.Reader) {
		isFirst := first.CompareAndSwap(false, true)
		for {
			req, err := decodeRequest(r)
			if err != nil {
				return
			}
			run.Add(1)
			if !okReply(conn) || !req.keep {
				return
			}
			if isFirst {
				waitReadable(conn)
				end(conn, r, run)
				return
			}
		}
	})
	return srv, run
}

// The ways php-fpm ends a kept connection between two requests, and
// whether the request written meanwhile may be sent again.
var recycleCases = []struct {
	name   string
	end    func(conn net.Conn, r *bufio.Reader, run *atomic.Int64)
	resend bool
}{
	{
		// fcgi_close after pm.max_requests: shutdown for writing, then
		// read and discard until the client closes.
		name: "graceful close after its last request",
		end: func(conn net.Conn, r *bufio.Reader, _ *atomic.Int64) {
			conn.(interface{ CloseWrite() error }).CloseWrite()
			io.Copy(io.Discard, r)
		},
		resend: true,
	},
	{
		// An idle child stopped (pm.ondemand, a reload): the socket is
		// closed with the request unread, and the kernel resets it.
		name:   "closed with the request unread",
		end:    func(net.Conn, *bufio.Reader, *atomic.Int64) {},
		resend: true,
	},
	{
		// A child that read the request and was killed running it.
		name: "killed after reading the request",
		end: func(conn net.Conn, r *bufio.Reader, run *atomic.Int64) {
			if _, err := decodeRequest(r); err == nil {
				run.Add(1)
			}
		},
		resend: false,
	},
	{
		// A child that began to answer and was killed.
		name: "killed after part of its answer",
		end: func(conn net.Conn, r *bufio.Reader, run *atomic.Int64) {
			if _, err := decodeRequest(r); err == nil {
				run.Add(1)
				conn.Write(encodeRecord(typeStdout, requestID, "Status: 200\r\n", 0))
			}
		},
		resend: false,
	},
}

// A request on a kept connection that php-fpm ended on its own schedule is
// sent again on a new connection, and runs once; one that a child read and
// died on is a failure, never sent again. Both hold on unix sockets and TCP.
func TestKeptConnectionEndedByServer(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		for _, tc := range recycleCases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				srv, run := recyclingServer(t, network, tc.end)
				accepted := &srv.accepted
				c := newClient(t, srv.addr, Options{MaxIdleConns: 1, IdleConnTimeout: time.Minute})
				if _, err := c.Do(t.Context(), &Request{Params: typicalParams()}); err != nil {
					t.Fatalf("first request: %v", err)
				}
				resp, err := c.Do(t.Context(), &Request{Params: typicalParams()})
				if tc.resend {
					if err != nil || string(resp.Body) != "ok" {
						t.Fatalf("second request: got %+v, %v; want it answered on a new connection", resp, err)
					}
					if n := c.Resent(); n != 1 {
						t.Errorf("Resent() = %d, want 1", n)
					}
					if n := accepted.Load(); n != 2 {
						t.Errorf("%d connections, want 2", n)
					}
				} else {
					if err == nil || !errors.Is(err, ErrProtocol) || errors.Is(err, ErrUnavailable) {
						t.Fatalf("second request: got error %v, want ErrProtocol", err)
					}
					if n := c.Resent(); n != 0 {
						t.Errorf("Resent() = %d, want 0: a request that ran was sent again", n)
					}
					if n := accepted.Load(); n != 1 {
						t.Errorf("%d connections, want 1", n)
					}
				}
				if n := run.Load(); n != 2 {
					t.Errorf("the server ran %d requests, want 2: each exactly once", n)
				}
			})
		}
	}
}
