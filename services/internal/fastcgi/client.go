// Package fastcgi is a minimal FastCGI client for handing requests to a
// php-fpm pool: the responder role, one request per connection.
package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	// ErrUnavailable means the server could not take the request: the dial
	// failed (connection refused, socket file missing, ...) or the server
	// answered FCGI_OVERLOADED. The request never ran, so callers may treat
	// this as "the pool is down or busy", not as the job's fault.
	ErrUnavailable = errors.New("fastcgi: server unavailable")

	// ErrProtocol means the server did not produce a well-formed answer:
	// malformed records or header block, an unexpected record type or
	// request id, a version other than 1, protocol status
	// FCGI_CANT_MPX_CONN or FCGI_UNKNOWN_ROLE, or the connection closing
	// before END_REQUEST.
	ErrProtocol = errors.New("fastcgi: protocol error")
)

// syncWriteMax is the largest request written before reading the response.
// Anything this small fits in the kernel's socket buffers, so the write
// cannot block on the server. A larger request is written concurrently with
// reading, because a script may produce a lot of output before (or without)
// reading its STDIN, and then neither side would make progress.
const syncWriteMax = 64 << 10

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

// Client sends FastCGI requests to one server. It is safe for concurrent use
// and opens a new connection for every request, which is what php-fpm expects
// of a client that does not ask to keep connections open.
type Client struct {
	addr             string
	network, address string
	dialer           net.Dialer

	// The pools hold request buffers and response readers, which would
	// otherwise be the largest allocations of every request.
	buffers sync.Pool // *[]byte
	readers sync.Pool // *bufio.Reader

	// Kept-alive connections, when KeepAlive enabled them.
	keep     int
	idleTime time.Duration
	mu       sync.Mutex
	idle     []*keptConn // most recently used last
}

// keptConn is a connection kept open between requests, with its reader.
type keptConn struct {
	conn  net.Conn
	r     *bufio.Reader
	timer *time.Timer // closes the connection once idle for too long
}

// KeepAlive makes the client ask the server to keep connections open
// (FCGI_KEEP_CONN) and reuse them, keeping at most max idle connections,
// each closed after idle time without a request. Call it before the first
// request. php-fpm gives a kept connection one child for as long as it is
// open, so max must not exceed the requests the caller runs at once, and
// the pool needs a child to spare for anything else (status, ping).
func (c *Client) KeepAlive(max int, idle time.Duration) {
	c.keep, c.idleTime = max, idle
}

// CloseIdle closes the idle kept-alive connections.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, k := range idle {
		k.timer.Stop()
		k.conn.Close()
	}
}

// takeIdle returns the most recently used idle connection, or nil.
func (c *Client) takeIdle() *keptConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.idle) > 0 {
		k := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if k.timer.Stop() {
			return k
		}
		// The timer fired and is closing it.
	}
	return nil
}

// putIdle keeps k for the next request, or closes it if enough are kept.
func (c *Client) putIdle(k *keptConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) >= c.keep {
		k.conn.Close()
		return
	}
	if k.timer == nil {
		k.timer = time.AfterFunc(c.idleTime, func() { c.expire(k) })
	} else {
		k.timer.Reset(c.idleTime)
	}
	c.idle = append(c.idle, k)
}

// expire closes k after it was idle for too long, freeing its php-fpm child.
func (c *Client) expire(k *keptConn) {
	c.mu.Lock()
	if i := slices.Index(c.idle, k); i >= 0 {
		c.idle = slices.Delete(c.idle, i, i+1)
	}
	c.mu.Unlock()
	k.conn.Close()
}

// NewClient returns a client for addr, which ParseAddress must accept.
func NewClient(addr string) (*Client, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	return &Client{addr: addr, network: network, address: address}, nil
}

// Address returns the address the client was created with, unchanged.
func (c *Client) Address() string { return c.addr }

// Param is one CGI parameter. Parameters are a slice rather than a map so
// they are sent in the order given.
type Param struct{ Name, Value string }

// Request is one FastCGI responder request.
type Request struct {
	// Params are sent exactly as given; the client adds none. In particular
	// CONTENT_LENGTH must be set to len(Body) when there is a body, or the
	// script will not see it.
	Params []Param
	// Body is sent as FCGI_STDIN.
	Body []byte
}

// Response is a responder's complete answer.
type Response struct {
	// Status is the code of the CGI Status header ("404 Not Found" gives
	// 404), or 200 when there is none: php-fpm sends none for a plain 200.
	Status int
	// Header holds the CGI response headers with canonical keys, without
	// Status. It is never nil.
	Header http.Header
	// Body is STDOUT after the header block.
	Body []byte
	// Stderr is all FCGI_STDERR content, kept apart from STDOUT.
	Stderr []byte
	// AppStatus is the application status from END_REQUEST. It is reported
	// only: php-fpm sends 0 even when a script calls exit(3).
	AppStatus uint32
}

// Do sends req on a new connection, or on a kept one after KeepAlive, and
// reads the response until END_REQUEST. The context bounds the whole exchange, dial included: when it
// is cancelled or its deadline passes, Do returns promptly with an error
// that wraps ctx.Err() (and also ErrUnavailable if the dial had not
// completed, since the request never reached the server). Other failures
// wrap ErrUnavailable or ErrProtocol as documented there. A successful Do may
// still carry a 5xx Status or Stderr output; judging those is the caller's
// business.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	if c.keep > 0 {
		return c.doKept(ctx, req)
	}
	return c.doNew(ctx, req)
}

// doNew runs req on a new connection, closed after the answer.
func (c *Client) doNew(ctx context.Context, req *Request) (*Response, error) {
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", c.addr, ErrUnavailable, err)
	}
	defer conn.Close()
	// The deadline covers a server that stops responding; closing on
	// cancellation covers contexts without one.
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	buf := c.getBuffer()
	*buf = appendRequest((*buf)[:0], req)
	var writeErr chan error
	if len(*buf) <= syncWriteMax {
		if _, err := conn.Write(*buf); err != nil {
			c.buffers.Put(buf)
			return nil, c.fail(ctx, "write request", err)
		}
		c.buffers.Put(buf)
	} else {
		// Too big to pool; see syncWriteMax for why it is written concurrently.
		writeErr = make(chan error, 1)
		go func() {
			_, err := conn.Write(*buf)
			writeErr <- err
		}()
	}

	r := c.getReader(conn)
	resp, err := readResponse(r)
	r.Reset(nil) // Do not keep the connection alive through the pool.
	c.readers.Put(r)
	if writeErr != nil {
		// A complete response makes a failed write irrelevant: the
		// server need not read all of STDIN. An incomplete one is already
		// an error. Either way, closing unblocks the writer.
		conn.Close()
		<-writeErr
	}
	if err != nil {
		return nil, c.fail(ctx, "read response", err)
	}
	return resp, nil
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

func (c *Client) getReader(conn net.Conn) *bufio.Reader {
	if r, ok := c.readers.Get().(*bufio.Reader); ok {
		r.Reset(conn)
		return r
	}
	return bufio.NewReader(conn)
}

// doKept runs req on a kept-alive connection, or on a new one kept after.
func (c *Client) doKept(ctx context.Context, req *Request) (*Response, error) {
	if k := c.takeIdle(); k != nil {
		resp, stale, err := c.exchange(ctx, k, req)
		if !stale {
			return resp, err
		}
		// The server closed the connection while it was idle (a child
		// that reached pm.max_requests, a restart) before reading the
		// request: it never ran, so it goes on a new connection.
	}
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", c.addr, ErrUnavailable, err)
	}
	resp, _, err := c.exchange(ctx, &keptConn{conn: conn, r: bufio.NewReader(conn)}, req)
	return resp, err
}

// exchange sends req on k and reads the answer, then keeps k for the next
// request if the exchange went well. stale reports that k was found closed
// before any answer came, so that req did not run.
func (c *Client) exchange(ctx context.Context, k *keptConn, req *Request) (resp *Response, stale bool, err error) {
	keep := false
	defer func() {
		if keep {
			c.putIdle(k)
		} else {
			k.conn.Close()
		}
	}()
	deadline, _ := ctx.Deadline() // zero: no deadline, which also clears an old one
	if err := k.conn.SetDeadline(deadline); err != nil {
		return nil, true, err
	}
	stop := context.AfterFunc(ctx, func() { k.conn.Close() })

	buf := c.getBuffer()
	*buf = appendRequestFlags((*buf)[:0], req, flagKeepConn)
	if len(*buf) > syncWriteMax {
		// See syncWriteMax: a large request needs a writer of its own;
		// such a rare request gets a connection of its own too.
		stop()
		c.buffers.Put(buf)
		resp, err := c.doNew(ctx, req)
		return resp, false, err
	}
	_, werr := k.conn.Write(*buf)
	c.buffers.Put(buf)
	if werr == nil {
		_, werr = k.r.Peek(1)
	}
	if werr != nil {
		stop()
		if ctx.Err() != nil {
			return nil, false, c.fail(ctx, "write request", werr)
		}
		return nil, true, c.fail(ctx, "write request", fmt.Errorf("%w: %w", ErrUnavailable, werr))
	}
	resp, err = readResponse(k.r)
	keep = stop() && err == nil && k.r.Buffered() == 0
	if err != nil {
		return nil, false, c.fail(ctx, "read response", err)
	}
	return resp, false, nil
}
