// Package fastcgi is a minimal FastCGI client for handing requests to a
// php-fpm pool: the responder role, one request at a time per connection,
// connections optionally kept open between requests.
package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrUnavailable means the request cannot have started: the dial failed
	// (connection refused, socket file missing, ...), the context ended
	// before a connection was made, or the server answered FCGI_OVERLOADED.
	// Callers may treat it as "the pool is down or busy", not as the job's
	// fault. Once a request was written, no failure is ErrUnavailable.
	ErrUnavailable = errors.New("fastcgi: server unavailable")

	// ErrProtocol means the server did not produce a well-formed answer:
	// malformed records or CGI header block, a header block over
	// Options.MaxHeaderBytes, an unexpected record type or request id, a
	// version other than 1, protocol status FCGI_CANT_MPX_CONN or
	// FCGI_UNKNOWN_ROLE, or the connection closing before END_REQUEST. The
	// request may have run: a child killed mid-job looks like this.
	ErrProtocol = errors.New("fastcgi: protocol error")
)

// syncWriteMax is the largest request written before reading the response.
// Anything this small fits in the kernel's socket buffers, so the write
// cannot block on the server. A larger request is written concurrently with
// reading, because a script may produce a lot of output before (or without)
// reading its STDIN, and then neither side would make progress.
const syncWriteMax = 64 << 10

// Defaults for the zero values of Options.
const (
	defaultIdleConnTimeout = 2 * time.Second
	defaultMaxBodyKept     = 4096
	defaultMaxHeaderBytes  = 64 << 10
)

// Options configure a Client. Their zero values mean the documented
// defaults; negative values are an error.
type Options struct {
	// MaxIdleConns is how many connections are kept open between requests,
	// asking the server for it with FCGI_KEEP_CONN. Zero disables
	// keep-alive: a new connection per request. php-fpm serves a kept
	// connection with one child for as long as it is open, so each one
	// pins a child: keep no more than the requests run at once, and leave
	// the pool a child to spare for anything else (status, ping).
	MaxIdleConns int
	// IdleConnTimeout closes a kept connection, freeing its child, after
	// this long without a request. Zero means 2s.
	IdleConnTimeout time.Duration
	// MaxBodyKept is how many bytes of the body Response.Body keeps. The
	// rest is read and counted in Response.BodySize only. Zero means 4096.
	MaxBodyKept int
	// MaxHeaderBytes bounds the CGI header block, its closing blank line
	// included; a larger one is ErrProtocol. Zero means 64 KiB.
	MaxHeaderBytes int
}

// Client sends FastCGI requests to one server. It is safe for concurrent
// use. Its memory does not depend on what scripts print: responses are
// streamed through fixed-size buffers (see Response and Request.Stderr).
type Client struct {
	addr             string
	network, address string
	dialer           net.Dialer
	opts             Options   // defaults filled in
	flags            byte      // BEGIN_REQUEST flags: flagKeepConn with a pool
	idle             *idlePool // nil without keep-alive
	buffers          sync.Pool // *[]byte, encoded requests
	readers          sync.Pool // *responseReader
	resent           atomic.Int64
	// drainPause is how long notStarted waits on TCP for the reset that
	// a closed socket answers a write with.
	drainPause time.Duration
}

// NewClient returns a client for addr, which ParseAddress must accept,
// configured by opts. It opens no connection.
func NewClient(addr string, opts Options) (*Client, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	for _, o := range []struct {
		name  string
		value int64
	}{
		{"MaxIdleConns", int64(opts.MaxIdleConns)},
		{"IdleConnTimeout", int64(opts.IdleConnTimeout)},
		{"MaxBodyKept", int64(opts.MaxBodyKept)},
		{"MaxHeaderBytes", int64(opts.MaxHeaderBytes)},
	} {
		if o.value < 0 {
			return nil, fmt.Errorf("fastcgi: option %s is negative", o.name)
		}
	}
	if opts.IdleConnTimeout == 0 {
		opts.IdleConnTimeout = defaultIdleConnTimeout
	}
	if opts.MaxBodyKept == 0 {
		opts.MaxBodyKept = defaultMaxBodyKept
	}
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	c := &Client{addr: addr, network: network, address: address, opts: opts, drainPause: defaultDrainPause}
	if opts.MaxIdleConns > 0 {
		c.flags = flagKeepConn
		c.idle = &idlePool{max: opts.MaxIdleConns, timeout: opts.IdleConnTimeout}
	}
	return c, nil
}

// ParseAddress parses "unix:///abs/path.sock" or "tcp://host:port" into the
// network and address arguments of net.Dial. Anything else, such as another
// scheme, a relative socket path, a missing host or port, or an empty string,
// is an error that names addr.
func ParseAddress(addr string) (network, address string, err error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("fastcgi: address %q: unix socket path must be absolute", addr)
		}
		return "unix", path, nil
	}
	if hostPort, ok := strings.CutPrefix(addr, "tcp://"); ok {
		host, port, err := net.SplitHostPort(hostPort)
		if err != nil {
			return "", "", fmt.Errorf("fastcgi: address %q: %w", addr, err)
		}
		if n, err := strconv.ParseUint(port, 10, 16); host == "" || err != nil || n == 0 {
			return "", "", fmt.Errorf("fastcgi: address %q: want tcp://host:port with a port from 1 to 65535", addr)
		}
		return "tcp", hostPort, nil
	}
	return "", "", fmt.Errorf("fastcgi: address %q: want unix:///abs/path.sock or tcp://host:port", addr)
}

// CloseIdleConnections closes the kept connections not in use, freeing
// their php-fpm children. Connections in use are kept after their request
// as usual. Without keep-alive it does nothing.
func (c *Client) CloseIdleConnections() {
	if c.idle != nil {
		c.idle.closeAll()
	}
}

// Do sends req and reads the response until END_REQUEST, on a kept
// connection if one is idle and still open, otherwise on a new one.
//
// The context bounds the whole exchange, dial included: when it is
// cancelled or its deadline passes, Do returns promptly with an error that
// wraps ctx.Err(), and also ErrUnavailable if no connection was made yet.
// A parameter too large to send is ErrParamTooLarge, and nothing is sent.
// Other failures wrap ErrUnavailable or ErrProtocol as documented there; a
// request that may have reached a php-fpm child is never sent again, so
// once it was written every failure is returned as it is, with one
// exception: a kept connection that php-fpm closed on its own schedule
// without reading the request (a child at pm.max_requests, an idle child
// stopped, a reload), which it tells from a child that died while running
// the request as notStarted explains. Such a request is sent once more on
// a new connection, and Resent counts it. A successful Do
// may still carry a 5xx Status; judging that is the caller's business.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	buf := c.getBuffer()
	defer c.putBuffer(buf)
	var err error
	if *buf, err = appendRequest((*buf)[:0], req, c.flags); err != nil {
		return nil, fmt.Errorf("encode request for %s: %w", c.addr, err)
	}
	// A kept connection would be closed by the context at once.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", c.addr, ErrUnavailable, err)
	}

	// Where the connection comes from, and whether it goes back, is all
	// that differs between keeping connections and not.
	var (
		k    *keptConn
		conn net.Conn
	)
	if c.idle != nil {
		k = c.idle.get()
	}
	if k != nil {
		conn = k.conn
	} else if conn, err = c.dial(ctx); err != nil {
		return nil, err
	}
	resp, clean, err := c.exchange(ctx, conn, *buf, req.Stderr)
	if k != nil && err != nil && c.notStarted(ctx, conn, err) {
		// The kept connection's child ended on its own schedule and
		// never read the request: send it once more, on a new
		// connection, where no such doubt can arise.
		conn.Close()
		c.resent.Add(1)
		if conn, err = c.dial(ctx); err != nil {
			return nil, err
		}
		k = nil
		resp, clean, err = c.exchange(ctx, conn, *buf, req.Stderr)
	}
	if !clean || c.idle == nil {
		conn.Close()
		return resp, err
	}
	if k == nil {
		k = &keptConn{conn: conn}
	}
	c.idle.put(k)
	return resp, err
}

// dial opens a new connection to the server; its failure is ErrUnavailable.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", c.addr, ErrUnavailable, err)
	}
	return conn, nil
}

// Resent returns how many requests were sent a second time, on a new
// connection, because php-fpm had closed their kept connection without
// reading them (see Do).
func (c *Client) Resent() int64 { return c.resent.Load() }

// exchange runs one request on conn, new or kept alike: it sets the
// context's deadline, closes conn if the context ends first, writes request
// and reads the response. clean reports that conn is fit for another
// request: the response was read whole, nothing follows it and the context
// did not close conn.
func (c *Client) exchange(ctx context.Context, conn net.Conn, request []byte, stderr io.Writer) (resp *Response, clean bool, err error) {
	// The deadline covers a server that stops responding; closing on
	// cancellation covers contexts without one. A zero deadline also
	// clears the previous request's on a kept connection.
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		// Nothing was written, so the request did not start.
		return nil, false, fmt.Errorf("set deadline %s: %w: %w", c.addr, ErrUnavailable, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })

	var wrote chan error
	if len(request) <= syncWriteMax {
		if n, err := conn.Write(request); err != nil {
			stop()
			if n == 0 {
				err = fmt.Errorf("%w: %w", errNothingWritten, err)
			}
			return nil, false, c.fail(ctx, "write request", lostWriting(err))
		}
	} else {
		// See syncWriteMax for why this needs a goroutine.
		wrote = make(chan error, 1)
		go func() {
			_, err := conn.Write(request)
			wrote <- err
		}()
	}

	rr := c.getReader(conn)
	resp, err = rr.read(stderr)
	clean = err == nil && rr.r.Buffered() == 0
	c.putReader(rr)
	if wrote != nil {
		select {
		case werr := <-wrote:
			clean = clean && werr == nil
		default:
			// The answer came before all of STDIN was taken, or not at
			// all: closing unblocks the writer, and conn is done.
			conn.Close()
			<-wrote
			clean = false
		}
	}
	if !stop() {
		clean = false // The context closed conn.
	}
	if err != nil {
		return nil, false, c.fail(ctx, "read response", err)
	}
	return resp, clean, nil
}

// lostWriting wraps a failed write: the connection broke before
// END_REQUEST, and part of the request may have reached the server.
func lostWriting(err error) error {
	return fmt.Errorf("%w: connection lost while writing the request: %w", ErrProtocol, err)
}

// fail wraps an error from operation op, preferring the context's error when
// the context caused it: the connection is then closed or past its deadline,
// and the resulting i/o or protocol error would only mislead.
func (c *Client) fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", op, c.addr, ctxErr)
	}
	// The connection deadline can fire just before the context's own timer.
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, c.addr, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s %s: %w", op, c.addr, err)
}

func (c *Client) getBuffer() *[]byte {
	if b, ok := c.buffers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

// putBuffer pools b unless it grew past syncWriteMax: such rare large
// requests should not pin their memory.
func (c *Client) putBuffer(b *[]byte) {
	if cap(*b) <= syncWriteMax {
		c.buffers.Put(b)
	}
}

func (c *Client) getReader(conn net.Conn) *responseReader {
	if rr, ok := c.readers.Get().(*responseReader); ok {
		rr.r.Reset(conn)
		return rr
	}
	return newResponseReader(conn, c.opts.MaxHeaderBytes, c.opts.MaxBodyKept)
}

func (c *Client) putReader(rr *responseReader) {
	rr.r.Reset(nil) // Do not keep the connection alive through the pool.
	c.readers.Put(rr)
}
