package broker

import (
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BlockWatch follows the connection.blocked and connection.unblocked
// notifications of one connection: RabbitMQ blocks the connections that
// publish while a memory or disk alarm lasts. It is the one watcher of its
// connection's blocks: a Publisher made WithBlockWatch waits on it, and its
// onChange tells whoever else must know (the daemon's metric and logs).
// Its methods are safe for concurrent use.
type BlockWatch struct {
	conn     *amqp.Connection
	onChange func(amqp.Blocking)
	done     chan struct{}

	mu sync.Mutex
	// open is closed while the connection is not blocked; a new one is made
	// when the broker blocks it.
	open chan struct{}
}

// WatchBlocked starts watching conn's blocks, until conn closes. It
// registers with conn at once, so that no notification that follows the
// call is missed.
//
// onChange, if not nil, is called on the watcher's goroutine once per
// change, in order: with Active true and the broker's Reason when the
// broker blocks conn, with Active false when it unblocks it. By then
// Blocked and the gate of a Publisher on the watch already follow the
// change. The broker's next notification waits for onChange to return.
//
// Once conn closed, the watch counts as unblocked, so that publishes on it
// fail at once rather than wait, without a call to onChange; then Done is
// closed.
func WatchBlocked(conn *amqp.Connection, onChange func(amqp.Blocking)) *BlockWatch {
	w := &BlockWatch{conn: conn, onChange: onChange, done: make(chan struct{}), open: make(chan struct{})}
	close(w.open)
	// The library closes blocks when the connection closes, which ends the
	// watcher.
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	go w.watch(blocks)
	return w
}

// watch follows blocks until the library closes it.
func (w *BlockWatch) watch(blocks <-chan amqp.Blocking) {
	defer close(w.done)
	for b := range blocks {
		if w.set(b.Active) && w.onChange != nil {
			w.onChange(b)
		}
	}
	w.set(false) // closed connection: publishes fail at once
}

// set records whether the connection is blocked and reports whether that
// changed anything.
func (w *BlockWatch) set(blocked bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.open: // not blocked until now
		if blocked {
			w.open = make(chan struct{})
			return true
		}
	default: // blocked until now
		if !blocked {
			close(w.open)
			return true
		}
	}
	return false
}

// Blocked reports whether the broker blocks the connection now.
func (w *BlockWatch) Blocked() bool {
	select {
	case <-w.unblocked():
		return false
	default:
		return true
	}
}

// unblocked returns a channel that is closed while the connection is not
// blocked.
func (w *BlockWatch) unblocked() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open
}

// Done returns a channel that is closed once the connection closed and the
// watcher ended: onChange is not called any more.
func (w *BlockWatch) Done() <-chan struct{} { return w.done }
