//go:build unix

package fastcgi

import (
	"errors"
	"net"
	"syscall"
)

// idleCheck tells whether the server closed an idle connection. It keeps
// its state with the connection, so that the check made before every
// request on a kept connection allocates nothing.
type idleCheck struct {
	raw  syscall.RawConn
	recv func(fd uintptr) bool // peeks at one byte into buf, setting err
	buf  [1]byte
	err  error
}

// peerClosed reports whether the server closed or reset conn, or sent on it
// unasked, while it was idle, without blocking and without consuming data.
//
// The obvious check, a read with a deadline in the past, cannot work in Go:
// the runtime reports the expired deadline without looking at the socket
// (internal/poll, prepareRead), so a closed connection looks alive. A
// non-blocking recv with MSG_PEEK does look: EAGAIN means open and quiet.
func (c *idleCheck) peerClosed(conn net.Conn) bool {
	if c.recv == nil {
		sc, ok := conn.(syscall.Conn)
		if !ok {
			return false // Not a socket; nothing to check.
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return true
		}
		c.raw = raw
		c.recv = func(fd uintptr) bool {
			// Go's sockets are non-blocking, so this returns at once.
			_, _, c.err = syscall.Recvfrom(int(fd), c.buf[:], syscall.MSG_PEEK)
			return true // Never wait for readiness.
		}
	}
	err := c.raw.Read(c.recv)
	// Anything but EAGAIN is stale: no error means EOF (0 bytes) or data
	// no request asked for, and any other error is a reset or worse.
	return err != nil || !errors.Is(c.err, syscall.EAGAIN)
}
