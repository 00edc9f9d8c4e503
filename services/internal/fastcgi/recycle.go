package fastcgi

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// errNothingWritten marks a write that failed before a byte of the request
// left: the server cannot have seen the request.
var errNothingWritten = errors.New("nothing written")

// defaultDrainPause is how long notStarted waits, on TCP, for the reset a
// closed socket answers a write with: a round trip, which between the
// daemon and php-fpm is well under a millisecond.
const defaultDrainPause = 25 * time.Millisecond

// typeAbortRequest is FCGI_ABORT_REQUEST (specification section 5.4): the
// record notStarted writes to see whether anyone still reads the
// connection. A server that reads it discards it; nothing else runs.
const typeAbortRequest = 2

var abortRecord = []byte{version1, typeAbortRequest, 0, requestID, 0, 0, 0, 0}

// notStarted reports whether a request that failed on a kept connection
// with err was never read by php-fpm, so that sending it again cannot run
// the script twice. php-fpm ends a kept connection on its own schedule: a
// child that served pm.max_requests, an idle child that pm.dynamic,
// pm.ondemand or a reload stops. It does so between requests, so the
// request written meanwhile finds one of three things:
//
//   - a closed socket before a byte was written (errNothingWritten);
//   - a socket the child closed with the request unread in it, which the
//     kernel resets (ECONNRESET, TCP and unix sockets alike). php-fpm
//     reads a request whole, body included, before the script starts;
//   - the graceful close of php-src main/fastcgi.c, fcgi_close: the child
//     shuts down its side for writing, then reads and discards whatever
//     comes until the client closes. The client reads EOF with no answer.
//
// A child that read the request and died running it (a signal, the
// request_terminate_timeout) also gives EOF with no answer, but its socket
// is closed for good: a write to it fails at once on a unix socket, and
// after a round trip on TCP, where the peer answers with a reset. That
// write is the probe: an FCGI_ABORT_REQUEST record, which a draining child
// discards. Anything else (an answer begun, a deadline, the context) is not
// resendable.
func (c *Client) notStarted(ctx context.Context, conn net.Conn, err error) bool {
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, errNothingWritten):
		return true
	case !errors.Is(err, errNoAnswer):
		return false
	case errors.Is(err, syscall.ECONNRESET):
		return true
	case errors.Is(err, io.EOF):
		return c.draining(ctx, conn)
	}
	return false
}

// draining reports whether the server still reads conn after closing its
// side of it for writing, that is whether it discards what comes rather
// than having closed the socket.
func (c *Client) draining(ctx context.Context, conn net.Conn) bool {
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return false
	}
	if _, err := conn.Write(abortRecord); err != nil {
		return false
	}
	if _, ok := conn.(*net.UnixConn); ok {
		// A unix socket whose peer is closed fails the write itself.
		return true
	}
	t := time.NewTimer(c.drainPause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	_, err := conn.Write(abortRecord)
	return err == nil
}
