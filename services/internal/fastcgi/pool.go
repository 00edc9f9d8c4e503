package fastcgi

import (
	"net"
	"slices"
	"sync"
	"time"
)

// idlePool keeps connections open between requests (FCGI_KEEP_CONN), at most
// max of them, each closed after timeout without a request. php-fpm serves a
// kept connection with one child until the connection closes (php-src
// main/fastcgi.c, fcgi_accept_request keeps reading requests from the same
// socket while keep is set), so every connection here pins a child.
type idlePool struct {
	max     int
	timeout time.Duration

	mu    sync.Mutex
	conns []*keptConn // most recently used last
}

// keptConn is a connection in, or taken from, the pool.
type keptConn struct {
	conn  net.Conn
	timer *time.Timer // closes the connection once idle for too long
	check idleCheck
}

// get returns the most recently used idle connection that the server has
// not closed meanwhile, or nil. Connections the server closed while idle (a
// child that reached pm.max_requests, a restart) are closed and skipped: no
// request was written to them, so nothing is lost.
func (p *idlePool) get() *keptConn {
	for {
		p.mu.Lock()
		if len(p.conns) == 0 {
			p.mu.Unlock()
			return nil
		}
		k := p.conns[len(p.conns)-1]
		p.conns = p.conns[:len(p.conns)-1]
		p.mu.Unlock()

		if !k.timer.Stop() {
			continue // The timer fired: expire is closing it.
		}
		if k.check.peerClosed(k.conn) {
			k.conn.Close()
			continue
		}
		return k
	}
}

// put keeps k for the next request, or closes it when max are kept already.
func (p *idlePool) put(k *keptConn) {
	// An expired deadline would make the idle check fail without looking
	// at the socket; the timer bounds the idle time instead.
	k.conn.SetDeadline(time.Time{})

	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) >= p.max {
		k.conn.Close()
		return
	}
	if k.timer == nil {
		k.timer = time.AfterFunc(p.timeout, func() { p.expire(k) })
	} else {
		k.timer.Reset(p.timeout)
	}
	p.conns = append(p.conns, k)
}

// expire closes k after it was idle for too long, freeing its php-fpm child.
func (p *idlePool) expire(k *keptConn) {
	p.mu.Lock()
	if i := slices.Index(p.conns, k); i >= 0 {
		p.conns = slices.Delete(p.conns, i, i+1)
	}
	p.mu.Unlock()
	k.conn.Close()
}

// closeAll closes every idle connection. Connections in use are not
// affected and may be kept when their request ends.
func (p *idlePool) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, k := range conns {
		k.timer.Stop()
		k.conn.Close()
	}
}
