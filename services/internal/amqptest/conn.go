package amqptest

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Reply codes, AMQP 0-9-1 section 1.2.
const (
	codeNoRoute        = 312
	codeNotFound       = 404
	codePrecondition   = 406
	codeFrameError     = 501
	codeSyntaxError    = 502
	codeChannelError   = 504
	codeUnexpected     = 505
	codeNotAllowed     = 530
	codeNotImplemented = 540
)

// conn is one client connection. Its fields other than nc, dead and out
// are guarded by the server's mutex.
type conn struct {
	s    *Server
	num  int
	nc   net.Conn
	out  outbox
	dead chan struct{} // closed by kill
	kill func()        // closes the socket and dead, once

	frameMax int
	user     string // authenticated with PLAIN; empty for another mechanism
	channels map[uint16]*channel
	blocked  bool // sent connection.blocked for the current alarm
	gone     bool // released: the broker forgot it
}

// channel is one channel of a connection.
type channel struct {
	conn        *conn
	id          uint16
	closing     bool // the server sent channel.close and awaits close-ok
	confirm     bool
	published   uint64 // publishes since confirm.select: the confirm tags
	prefetch    int
	deliveryTag uint64
	unacked     map[uint64]*delivery
	consumers   map[string]*consumer

	// The message being received: its basic.publish, whether its content
	// header came, and its body so far.
	content    *Publishing
	headerSeen bool
	bodySize   uint64
	body       []byte
}

func newConn(s *Server, n int, nc net.Conn) *conn {
	c := &conn{s: s, num: n, nc: nc, dead: make(chan struct{}), frameMax: defaultFrameMax, channels: make(map[uint16]*channel)}
	c.out.wake = make(chan struct{}, 1)
	var once sync.Once
	c.kill = func() {
		once.Do(func() {
			close(c.dead)
			nc.Close()
		})
	}
	return c
}

// method queues a method frame for the client.
func (c *conn) method(channel, class, id uint16, args func(*enc)) {
	var e enc
	e.u16(class)
	e.u16(id)
	if args != nil {
		args(&e)
	}
	c.out.push(encodeFrame(frameMethod, channel, e.Bytes()))
}

// content queues the content header and body frames of p.
func (c *conn) content(channel uint16, p amqp.Publishing) {
	var h enc
	h.u16(60) // class basic
	h.u16(0)  // weight
	h.u64(uint64(len(p.Body)))
	h.properties(p)
	c.out.push(encodeFrame(frameHeader, channel, h.Bytes()))
	chunk := c.frameMax - 8 // frame header and end
	for body := p.Body; len(body) > 0; {
		n := min(chunk, len(body))
		c.out.push(encodeFrame(frameBody, channel, body[:n]))
		body = body[n:]
	}
}

// outbox holds the frames waiting for the connection's writer, so that the
// server never writes to a socket while it holds its lock: a client that
// does not read would stall every other connection.
type outbox struct {
	mu        sync.Mutex
	frames    [][]byte
	finishing bool // write what is queued, then half-close
	stopped   bool // write nothing more
	wake      chan struct{}
}

func (o *outbox) update(f func()) {
	o.mu.Lock()
	f()
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) push(frame []byte) {
	o.update(func() {
		if !o.finishing && !o.stopped {
			o.frames = append(o.frames, frame)
		}
	})
}

func (o *outbox) finish() { o.update(func() { o.finishing = true }) }
func (o *outbox) stop()   { o.update(func() { o.stopped = true }) }

// next waits for frames to write; finish says to half-close after them,
// stop to end at once.
func (o *outbox) next() (frames [][]byte, finish, stop bool) {
	for {
		o.mu.Lock()
		frames, finish, stop = o.frames, o.finishing, o.stopped
		o.frames = nil
		o.mu.Unlock()
		if stop || finish || len(frames) > 0 {
			return frames, finish, stop
		}
		<-o.wake
	}
}

// write is the connection's writer: it sends the outbox's frames in order
// until the outbox stops or finishes, or the socket fails.
func (c *conn) write() {
	for {
		frames, finish, stop := c.out.next()
		if stop {
			return
		}
		bufs := net.Buffers(frames)
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return
		}
		if finish {
			// The end of the stream after all that was sent: unlike a close
			// with unread input, which sends a reset, it makes the client
			// read everything first.
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// next is what the serve loop does after a frame.
type next int

const (
	goOn   next = iota
	hangUp      // flush, half-close, ignore the client until it closes
	abort       // close now with a reset
)

// serve speaks AMQP on c until the client leaves, the server drops c, or
// the server closes. It owns c's writer goroutine.
func (s *Server) serve(c *conn) {
	var writer sync.WaitGroup
	writer.Go(c.write)
	defer func() {
		s.mu.Lock()
		s.releaseConnLocked(c)
		s.mu.Unlock()
		c.kill()
		c.out.stop()
		writer.Wait()
	}()

	r := bufio.NewReader(c.nc)
	header := make([]byte, 8)
	if _, err := io.ReadFull(r, header); err != nil {
		return
	}
	if string(header) != "AMQP\x00\x00\x09\x01" {
		// The protocol's answer to a header it does not speak.
		c.out.push([]byte("AMQP\x00\x00\x09\x01"))
		c.out.finish()
		return
	}
	s.mu.Lock()
	c.method(0, 10, 10, func(e *enc) { // connection.start
		e.u8(0)
		e.u8(9)
		e.table(amqp.Table{
			"product": "amqptest",
			"capabilities": amqp.Table{
				"publisher_confirms":     true,
				"basic.nack":             true,
				"consumer_cancel_notify": true,
				"connection.blocked":     true,
				"per_consumer_qos":       true,
			},
		})
		e.longstr("PLAIN AMQPLAIN")
		e.longstr("en_US")
	})
	s.mu.Unlock()

	for {
		if !s.waitWhileBlocked(c) {
			return
		}
		f, err := readFrame(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		n := s.handleLocked(c, f)
		s.mu.Unlock()
		switch n {
		case abort:
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.SetLinger(0) // the close sends a reset
			}
			return
		case hangUp:
			c.out.finish()
			io.Copy(io.Discard, r)
			return
		}
	}
}

// waitWhileBlocked holds c's next frame unread while an alarm blocks c
// (see Server.SetAlarm). It returns false if c was dropped meanwhile.
func (s *Server) waitWhileBlocked(c *conn) bool {
	s.mu.Lock()
	var off chan struct{}
	if s.alarm && c.blocked {
		off = s.alarmOff
	}
	s.mu.Unlock()
	if off == nil {
		return true
	}
	select {
	case <-off:
		return true
	case <-c.dead:
		return false
	}
}

func (s *Server) handleLocked(c *conn, f frame) next {
	if c.gone {
		return hangUp
	}
	switch f.typ {
	case frameHeartbeat:
		// An answer keeps the client's read deadline from expiring in a
		// test that idles.
		c.out.push(encodeFrame(frameHeartbeat, 0, nil))
		return goOn
	case frameMethod:
		return s.methodLocked(c, f)
	case frameHeader, frameBody:
		return s.contentLocked(c, f)
	}
	return s.connErrorLocked(c, codeFrameError, fmt.Sprintf("FRAME_ERROR - frame type %d", f.typ), 0, 0)
}

// connErrorLocked closes c with an error, as the broker does: it sends
// connection.close and forgets c.
func (s *Server) connErrorLocked(c *conn, code uint16, text string, class, id uint16) next {
	c.method(0, 10, 50, func(e *enc) { // connection.close
		e.u16(code)
		e.shortstr(text)
		e.u16(class)
		e.u16(id)
	})
	s.releaseConnLocked(c)
	return hangUp
}

// channelErrorLocked closes ch with an error: it sends channel.close,
// requeues what ch held, and ignores ch until the client's close-ok.
func (s *Server) channelErrorLocked(ch *channel, code uint16, text string, class, id uint16) {
	ch.conn.method(ch.id, 20, 40, func(e *enc) { // channel.close
		e.u16(code)
		e.shortstr(text)
		e.u16(class)
		e.u16(id)
	})
	ch.closing = true
	ch.content = nil
	s.releaseChannelLocked(ch)
}

func (s *Server) methodLocked(c *conn, f frame) next {
	d := &dec{b: f.payload}
	class, id := d.u16(), d.u16()
	if d.err != nil {
		return s.connErrorLocked(c, codeFrameError, "FRAME_ERROR - short method frame", 0, 0)
	}
	malformed := func() next {
		return s.connErrorLocked(c, codeSyntaxError, fmt.Sprintf("SYNTAX_ERROR - malformed arguments of %d.%d", class, id), class, id)
	}
	if f.channel == 0 {
		switch {
		case class == 10 && id == 11: // connection.start-ok
			if c.user = startOKUser(d); d.err != nil {
				return malformed()
			}
			c.method(0, 10, 30, func(e *enc) { // connection.tune
				e.u16(2047)
				e.u32(defaultFrameMax)
				e.u16(0) // heartbeat: the client's choice
			})
		case class == 10 && id == 31: // connection.tune-ok
			d.u16() // channel-max
			frameMax := d.u32()
			if d.err != nil {
				return malformed()
			}
			if frameMax >= 4096 {
				c.frameMax = int(frameMax)
			}
		case class == 10 && id == 40: // connection.open
			c.method(0, 10, 41, func(e *enc) { e.shortstr("") })
		case class == 10 && id == 50: // connection.close
			c.method(0, 10, 51, nil)
			s.releaseConnLocked(c)
			return hangUp
		case class == 10 && id == 51: // connection.close-ok
			return hangUp
		default:
			return s.notImplementedLocked(c, class, id)
		}
		return goOn
	}

	if class == 20 && id == 10 { // channel.open
		if c.channels[f.channel] != nil {
			return s.connErrorLocked(c, codeChannelError, fmt.Sprintf("CHANNEL_ERROR - second 'channel.open' seen on channel %d", f.channel), class, id)
		}
		c.channels[f.channel] = &channel{conn: c, id: f.channel, unacked: make(map[uint64]*delivery), consumers: make(map[string]*consumer)}
		c.method(f.channel, 20, 11, func(e *enc) { e.longstr("") })
		return goOn
	}
	ch := c.channels[f.channel]
	if ch == nil {
		return s.connErrorLocked(c, codeChannelError, fmt.Sprintf("CHANNEL_ERROR - channel %d not open", f.channel), class, id)
	}
	if ch.closing {
		// After its channel.close the server ignores all but the answer.
		if class == 20 && (id == 41 || id == 40) {
			if id == 40 {
				c.method(ch.id, 20, 41, nil)
			}
			delete(c.channels, ch.id)
		}
		return goOn
	}
	if ch.content != nil {
		return s.connErrorLocked(c, codeUnexpected, fmt.Sprintf("UNEXPECTED_FRAME - method %d.%d in the content of a publish", class, id), class, id)
	}

	switch {
	case class == 20 && id == 40: // channel.close
		s.releaseChannelLocked(ch)
		if s.IgnoreChannelClose {
			ch.closing = true
			return goOn
		}
		delete(c.channels, ch.id)
		c.method(ch.id, 20, 41, nil)
	case class == 20 && id == 20: // channel.flow
		active := bit(d.u8(), 0)
		c.method(ch.id, 20, 21, func(e *enc) { e.bits(active) })

	case class == 50 && id == 10: // queue.declare
		d.u16()
		name := d.shortstr()
		flags := d.u8()
		args := d.table()
		if d.err != nil {
			return malformed()
		}
		return s.declareLocked(ch, name, flags, args)
	case class == 50 && id == 30: // queue.purge
		d.u16()
		name := d.shortstr()
		noWait := bit(d.u8(), 0)
		if d.err != nil {
			return malformed()
		}
		q := s.queues[name]
		if q == nil {
			s.channelErrorLocked(ch, codeNotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", name), class, id)
			return goOn
		}
		count := len(q.ready)
		q.ready = nil
		if !noWait {
			c.method(ch.id, 50, 31, func(e *enc) { e.u32(uint32(count)) })
		}
	case class == 50 && id == 40: // queue.delete
		d.u16()
		name := d.shortstr()
		noWait := bit(d.u8(), 2)
		if d.err != nil {
			return malformed()
		}
		count := 0
		if q := s.queues[name]; q != nil {
			count = len(q.ready)
			s.cancelConsumersLocked(q)
			delete(s.queues, name)
		}
		if !noWait {
			c.method(ch.id, 50, 41, func(e *enc) { e.u32(uint32(count)) })
		}

	case class == 60 && id == 10: // basic.qos
		d.u32() // prefetch-size
		count := d.u16()
		d.u8() // global: taken as per consumer, RabbitMQ's usual meaning
		if d.err != nil {
			return malformed()
		}
		ch.prefetch = int(count)
		c.method(ch.id, 60, 11, nil)
	case class == 60 && id == 20: // basic.consume
		d.u16()
		name := d.shortstr()
		tag := d.shortstr()
		flags := d.u8()
		d.table()
		if d.err != nil {
			return malformed()
		}
		return s.consumeLocked(ch, name, tag, bit(flags, 1), bit(flags, 3))
	case class == 60 && id == 30: // basic.cancel
		tag := d.shortstr()
		noWait := bit(d.u8(), 0)
		if d.err != nil {
			return malformed()
		}
		if cons := ch.consumers[tag]; cons != nil {
			cons.q.removeConsumer(cons)
			delete(ch.consumers, tag)
		}
		if !noWait {
			c.method(ch.id, 60, 31, func(e *enc) { e.shortstr(tag) })
		}
	case class == 60 && id == 31: // basic.cancel-ok, the answer to the server's cancel
	case class == 60 && id == 40: // basic.publish
		d.u16()
		p := &Publishing{Conn: c.num, Channel: ch.id, Exchange: d.shortstr(), RoutingKey: d.shortstr()}
		p.Mandatory = bit(d.u8(), 0)
		if d.err != nil {
			return malformed()
		}
		if p.Exchange != "" {
			// The default exchange is the only one: as RabbitMQ with an
			// exchange that does not exist. The content that follows is
			// ignored with the closing channel.
			s.channelErrorLocked(ch, codeNotFound, fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", p.Exchange), class, id)
			return goOn
		}
		ch.content, ch.headerSeen, ch.body = p, false, nil
	case class == 60 && id == 80: // basic.ack
		tag := d.u64()
		multiple := bit(d.u8(), 0)
		if d.err != nil {
			return malformed()
		}
		s.settleLocked(ch, tag, multiple, "ack", false, id)
	case class == 60 && id == 90: // basic.reject
		tag := d.u64()
		requeue := bit(d.u8(), 0)
		if d.err != nil {
			return malformed()
		}
		s.settleLocked(ch, tag, false, "reject", requeue, id)
	case class == 60 && id == 120: // basic.nack
		tag := d.u64()
		flags := d.u8()
		if d.err != nil {
			return malformed()
		}
		s.settleLocked(ch, tag, bit(flags, 0), "nack", bit(flags, 1), id)

	case class == 85 && id == 10: // confirm.select
		noWait := bit(d.u8(), 0)
		ch.confirm = true
		if !noWait {
			c.method(ch.id, 85, 11, nil)
		}
	default:
		return s.notImplementedLocked(c, class, id)
	}
	return goOn
}

// startOKUser decodes the arguments of a connection.start-ok and returns
// the user it authenticates with PLAIN, empty with another mechanism. Any
// password goes; the user is kept for the user-id check.
func startOKUser(d *dec) string {
	d.table() // client properties
	mechanism := d.shortstr()
	response := d.longstr()
	if mechanism != "PLAIN" {
		return ""
	}
	// authzid NUL user NUL password
	if f := strings.Split(response, "\x00"); len(f) == 3 {
		return f[1]
	}
	return ""
}

func (s *Server) notImplementedLocked(c *conn, class, id uint16) next {
	return s.connErrorLocked(c, codeNotImplemented, fmt.Sprintf("NOT_IMPLEMENTED - amqptest does not support method %d.%d", class, id), class, id)
}

func (s *Server) declareLocked(ch *channel, name string, flags uint8, args amqp.Table) next {
	decl := Declaration{Conn: ch.conn.num, Queue: name, Passive: bit(flags, 0), Durable: bit(flags, 1), Exclusive: bit(flags, 2), AutoDelete: bit(flags, 3), Args: args}
	s.declared = append(s.declared, decl)
	if s.RejectDeclare != "" {
		s.channelErrorLocked(ch, codePrecondition, s.RejectDeclare, 50, 10)
		return goOn
	}
	if name == "" {
		s.names++
		name = fmt.Sprintf("amq.gen-%d", s.names)
	}
	q := s.queues[name]
	if q == nil {
		if decl.Passive {
			s.channelErrorLocked(ch, codeNotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", name), 50, 10)
			return goOn
		}
		q = &queue{name: name, durable: decl.Durable, args: maps.Clone(args)}
		s.queues[name] = q
	} else if s.CheckArgs && !decl.Passive {
		if key, ok := firstDifference(q.args, args); ok {
			s.channelErrorLocked(ch, codePrecondition, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in vhost '/': received %s but current is %s",
				key, name, argValue(args, key), argValue(q.args, key)), 50, 10)
			return goOn
		}
	}
	if !bit(flags, 4) { // no-wait
		ch.conn.method(ch.id, 50, 11, func(e *enc) {
			e.shortstr(name)
			e.u32(uint32(len(q.ready)))
			e.u32(uint32(len(q.consumers)))
		})
	}
	return goOn
}

func (s *Server) consumeLocked(ch *channel, name, tag string, noAck, noWait bool) next {
	q := s.queues[name]
	if q == nil {
		s.channelErrorLocked(ch, codeNotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", name), 60, 20)
		return goOn
	}
	if tag == "" {
		s.names++
		tag = fmt.Sprintf("amq.ctag-%d", s.names)
	}
	if ch.consumers[tag] != nil {
		return s.connErrorLocked(ch.conn, codeNotAllowed, fmt.Sprintf("NOT_ALLOWED - attempt to reuse consumer tag '%s'", tag), 60, 20)
	}
	cons := &consumer{tag: tag, ch: ch, q: q, noAck: noAck, prefetch: ch.prefetch}
	ch.consumers[tag] = cons
	q.consumers = append(q.consumers, cons)
	if !noWait {
		ch.conn.method(ch.id, 60, 21, func(e *enc) { e.shortstr(tag) })
	}
	s.deliverLocked(q)
	return goOn
}

// settleLocked applies a client's ack, nack or reject of tag (and of all
// tags up to it if multiple; tag 0 with multiple means all).
func (s *Server) settleLocked(ch *channel, tag uint64, multiple bool, method string, requeue bool, id uint16) {
	var tags []uint64
	if multiple {
		for _, t := range slices.Sorted(maps.Keys(ch.unacked)) {
			if tag == 0 || t <= tag {
				tags = append(tags, t)
			}
		}
	} else if ch.unacked[tag] != nil {
		tags = []uint64{tag}
	}
	if len(tags) == 0 {
		s.channelErrorLocked(ch, codePrecondition, fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d", tag), 60, id)
		return
	}
	byQueue := make(map[*queue][]*message)
	var order []*queue
	for _, t := range tags {
		d := ch.unacked[t]
		delete(ch.unacked, t)
		d.cons.unacked--
		s.settled = append(s.settled, Settlement{
			Conn: ch.conn.num, Channel: ch.id, DeliveryTag: t, Queue: d.q.name,
			Method: method, Requeue: requeue, Message: clonePublishing(d.msg.pub),
		})
		if _, seen := byQueue[d.q]; !seen {
			order = append(order, d.q)
		}
		if requeue {
			byQueue[d.q] = append(byQueue[d.q], d.msg)
		}
	}
	for _, q := range order {
		s.requeueLocked(q, byQueue[q]) // with no message, it delivers to the room made
	}
}

func (s *Server) contentLocked(c *conn, f frame) next {
	ch := c.channels[f.channel]
	if ch == nil {
		return s.connErrorLocked(c, codeChannelError, fmt.Sprintf("CHANNEL_ERROR - channel %d not open", f.channel), 0, 0)
	}
	if ch.closing {
		s.contentReceivedLocked(c)
		return goOn
	}
	if ch.content == nil || (f.typ == frameHeader) == ch.headerSeen {
		return s.connErrorLocked(c, codeUnexpected, "UNEXPECTED_FRAME - content frame out of place", 0, 0)
	}
	if f.typ == frameHeader {
		d := &dec{b: f.payload}
		d.u16() // class
		d.u16() // weight
		ch.bodySize = d.u64()
		d.properties(&ch.content.Publishing)
		if d.err != nil {
			return s.connErrorLocked(c, codeSyntaxError, "SYNTAX_ERROR - malformed content header", 0, 0)
		}
		ch.headerSeen = true
	} else {
		ch.body = append(ch.body, f.payload...)
		if uint64(len(ch.body)) > ch.bodySize {
			return s.connErrorLocked(c, codeFrameError, "FRAME_ERROR - body longer than announced", 0, 0)
		}
	}
	s.contentReceivedLocked(c)
	if uint64(len(ch.body)) < ch.bodySize {
		return goOn
	}
	p := *ch.content
	p.Body = ch.body
	ch.content, ch.headerSeen, ch.body = nil, false, nil
	if p.UserId != "" && c.user != "" && p.UserId != c.user {
		// RabbitMQ's validated user-id.
		s.channelErrorLocked(ch, codePrecondition, fmt.Sprintf("PRECONDITION_FAILED - user_id property set to '%s' but authenticated user was '%s'", p.UserId, c.user), 60, 40)
		return goOn
	}
	return s.publishLocked(ch, p)
}

// publishLocked answers a complete basic.publish as OnPublish decides.
func (s *Server) publishLocked(ch *channel, p Publishing) next {
	c := ch.conn
	s.seq++
	s.published = append(s.published, p)
	var tag uint64
	if ch.confirm {
		ch.published++
		tag = ch.published
	}
	confirm := func(ack bool) {
		if !ch.confirm {
			return
		}
		if ack {
			c.method(ch.id, 60, 80, func(e *enc) { e.u64(tag); e.bits(false) }) // basic.ack
		} else {
			c.method(ch.id, 60, 120, func(e *enc) { e.u64(tag); e.bits(false, false) }) // basic.nack
		}
	}
	returnIt := func() {
		c.method(ch.id, 60, 50, func(e *enc) { // basic.return
			e.u16(codeNoRoute)
			e.shortstr("NO_ROUTE")
			e.shortstr(p.Exchange)
			e.shortstr(p.RoutingKey)
		})
		c.content(ch.id, p.Publishing)
	}
	route := func() {
		q := s.queues[p.RoutingKey]
		if q == nil {
			if p.Mandatory {
				returnIt()
			}
			return
		}
		q.ready = append(q.ready, &message{exchange: p.Exchange, routingKey: p.RoutingKey, pub: clonePublishing(p.Publishing)})
		s.deliverLocked(q)
	}

	v := Ack
	if s.OnPublish != nil {
		v = s.OnPublish(s.seq, p)
	}
	switch v {
	case Ack:
		route()
		confirm(true)
	case Nack:
		confirm(false)
	case Return:
		returnIt()
		confirm(true)
	case Ignore:
	case HangUp:
		s.releaseConnLocked(c)
		return hangUp
	case AckHangUp:
		route()
		confirm(true)
		s.releaseConnLocked(c)
		return hangUp
	case Abort:
		s.releaseConnLocked(c)
		return abort
	case CloseChannel:
		text := s.ChannelCloseText
		if text == "" {
			text = "PRECONDITION_FAILED - channel closed by amqptest"
		}
		s.channelErrorLocked(ch, codePrecondition, text, 60, 40)
	}
	return goOn
}

// argOrder is the order in which RabbitMQ compares a queue's arguments
// (rabbit_amqqueue:declare_args/0); the first that differs is named.
var argOrder = []string{
	"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
	"x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
	"x-single-active-consumer", "x-queue-type", "x-delivery-limit",
}

// firstDifference returns the first argument, in argOrder and then in
// name order, whose value differs between current and asked.
func firstDifference(current, asked amqp.Table) (string, bool) {
	keys := slices.Clone(argOrder)
	var others []string
	for _, t := range []amqp.Table{current, asked} {
		for k := range t {
			if !slices.Contains(keys, k) && !slices.Contains(others, k) {
				others = append(others, k)
			}
		}
	}
	slices.Sort(others)
	for _, k := range append(keys, others...) {
		a, inA := current[k]
		b, inB := asked[k]
		if inA != inB || fmt.Sprint(a) != fmt.Sprint(b) {
			return k, true
		}
	}
	return "", false
}

// argValue describes an argument's value as RabbitMQ's refusal does.
func argValue(t amqp.Table, key string) string {
	v, ok := t[key]
	if !ok {
		return "none"
	}
	return fmt.Sprintf("the value '%v'", v)
}
