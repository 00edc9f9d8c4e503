//go:build !unix

package fastcgi

import "net"

// idleCheck tells whether the server closed an idle connection.
type idleCheck struct{}

// peerClosed cannot look at the socket without blocking here, so it reports
// every idle connection as open. A request on one the server closed then
// fails with ErrProtocol instead of moving to a new connection; it still
// never runs twice.
func (*idleCheck) peerClosed(net.Conn) bool { return false }
