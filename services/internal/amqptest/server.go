// Package amqptest runs an AMQP 0-9-1 server on a loopback port, enough of
// RabbitMQ for the unit tests of the programs that use
// github.com/rabbitmq/amqp091-go: queues on the default exchange,
// consumers with prefetch, acks, nacks and rejects, publisher confirms and
// returns, server-side consumer cancellation, channel and connection
// failures, and memory alarms that block publishing connections. Tests
// import it the way they import net/http/httptest; programs never do.
//
// What it leaves out: exchanges other than the default one (a publish to
// one is a channel error, as to an exchange that does not exist),
// bindings, dead-lettering, message TTLs, queue length and message size
// limits, the delivery counts of quorum queues, basic.get, transactions,
// passwords (it takes any, and checks a message's user-id against the
// user) and the checks RabbitMQ makes that a queue is declared again with
// the same arguments; tests stand in for some with OnPublish and
// RejectDeclare.
//
// TestScenarios checks the behaviours it shares with RabbitMQ against
// the fake and, given AMQPTEST_URL, against a real broker.
package amqptest

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/testutil"
)

// Verdict is how the server answers one basic.publish; see
// Server.OnPublish.
type Verdict int

// The verdicts. Confirms are sent only on channels in confirm mode.
const (
	// Ack routes the message as RabbitMQ would and confirms it; an
	// unroutable mandatory message is returned before its confirm.
	Ack Verdict = iota
	// Nack drops the message and nacks it.
	Nack
	// Return returns the message as unroutable (312 NO_ROUTE), then
	// confirms it, as RabbitMQ does with a mandatory message no queue
	// takes.
	Return
	// Ignore drops the message and never settles it.
	Ignore
	// HangUp drops the message and the connection, after sending all that
	// was sent before: the client reads the end of the stream.
	HangUp
	// AckHangUp routes and confirms the message, then hangs up.
	AckHangUp
	// Abort drops the connection with a TCP reset, which may destroy what
	// was sent before and not yet read.
	Abort
	// CloseChannel closes the channel with 406 and ChannelCloseText,
	// keeping the connection.
	CloseChannel
)

// Publishing is one basic.publish as the server received it.
type Publishing struct {
	Conn       int    // the connection's number, from 1 in accept order
	Channel    uint16 // the channel's id on that connection
	Exchange   string
	RoutingKey string
	Mandatory  bool
	amqp.Publishing
}

// Declaration is one queue.declare as the server received it.
type Declaration struct {
	Conn       int
	Queue      string
	Passive    bool
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       amqp.Table // never nil
}

// Settlement is one delivery that a client settled.
type Settlement struct {
	Conn        int
	Channel     uint16
	DeliveryTag uint64
	Queue       string
	Method      string // "ack", "nack" or "reject"
	Requeue     bool   // nack and reject only: the message went back to its queue
	Message     amqp.Publishing
}

// QueueInfo is the state of one queue.
type QueueInfo struct {
	Name      string
	Durable   bool
	Args      amqp.Table
	Ready     int // messages waiting for a consumer
	Unacked   int // messages delivered and not yet settled
	Consumers int
}

// ConnInfo is the state of one open connection.
type ConnInfo struct {
	Number   int
	Blocked  bool // the server sent connection.blocked and not yet unblocked
	Channels []ChannelInfo
}

// ChannelInfo is the state of one open channel.
type ChannelInfo struct {
	ID        uint16
	Confirm   bool
	Prefetch  int
	Consumers []string // consumer tags, sorted
	Unacked   int
}

// Server is an in-memory AMQP 0-9-1 broker. Set the exported fields that
// configure it before Start; read the state through its methods, which are
// safe for concurrent use.
type Server struct {
	// OnPublish decides how the server answers publish number seq, counted
	// from 1 over all connections. nil means Ack for all. It runs with the
	// server locked: it must not call the Server's methods.
	OnPublish func(seq int, p Publishing) Verdict
	// Refuse, if set and true for a connection's number (from 1, in accept
	// order), closes that connection before a word.
	Refuse func(conn int) bool
	// RejectDeclare, if not empty, makes every queue.declare close the
	// channel with 406 and this text, as RabbitMQ does when the queue exists
	// with other arguments. The declaration is recorded first.
	RejectDeclare string
	// CheckArgs makes a queue.declare of an existing queue with other
	// arguments close the channel with 406, naming the first argument
	// that differs in RabbitMQ's order and words ("inequivalent arg
	// 'x-queue-type' for queue ..."), as RabbitMQ does.
	CheckArgs bool
	// IgnoreChannelClose makes the server never answer a client's
	// channel.close.
	IgnoreChannelClose bool
	// ChannelCloseText is the text of the CloseChannel verdict; empty means
	// a text of the server's.
	ChannelCloseText string

	// URL is amqp://guest:guest@Addr/, set by Start.
	URL string
	// Addr is the server's host:port, set by Start.
	Addr string

	ln   net.Listener
	done sync.WaitGroup // the accept loop and every connection's serve

	mu       sync.Mutex
	closed   bool
	accepted int
	conns    map[int]*conn // open ones, by number
	queues   map[string]*queue
	seq      int // publishes received
	names    int // generated queue names and consumer tags
	alarm    bool
	alarmOff chan struct{} // closed when the alarm clears

	declared  []Declaration
	published []Publishing
	settled   []Settlement
}

// queue is a queue on the default exchange.
type queue struct {
	name      string
	durable   bool
	args      amqp.Table
	ready     []*message
	consumers []*consumer
	next      int // round-robin position among consumers
}

type message struct {
	exchange, routingKey string
	pub                  amqp.Publishing
	redelivered          bool
}

type consumer struct {
	tag      string
	ch       *channel
	q        *queue
	noAck    bool
	prefetch int // 0: no limit
	unacked  int
}

// delivery is a message delivered on a channel and not yet settled.
type delivery struct {
	msg  *message
	q    *queue
	cons *consumer
}

// NewServer starts a Server with the default configuration; it stops when
// the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{}
	s.Start(t)
	return s
}

// Start serves on a loopback port until the test ends, or until Close. Call
// it once, after setting the configuration fields. Connections are numbered
// from 1 in accept order; each runs in a goroutine that Close waits for.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.URL = "amqp://guest:guest@" + s.Addr + "/"
	s.conns = make(map[int]*conn)
	s.queues = make(map[string]*queue)
	s.done.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
}

// Close stops the server: it closes the listener and every connection and
// waits for their goroutines. It may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.done.Wait()
}

func (s *Server) accept() {
	defer s.done.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.accepted++
		n := s.accepted
		if s.closed || s.Refuse != nil && s.Refuse(n) {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		c := newConn(s, n, nc)
		s.conns[n] = c
		s.done.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.done.Done()
			s.serve(c)
		}()
	}
}

// SetOnPublish replaces OnPublish while the server runs; assigning the
// field after Start would race with the connections that read it.
func (s *Server) SetOnPublish(f func(seq int, p Publishing) Verdict) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.OnPublish = f
}

// Connections returns how many connections the server accepted, refused
// ones included.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Conns returns the open connections, in accept order.
func (s *Server) Conns() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var infos []ConnInfo
	for _, n := range slices.Sorted(maps.Keys(s.conns)) {
		c := s.conns[n]
		info := ConnInfo{Number: n, Blocked: c.blocked}
		for _, id := range slices.Sorted(maps.Keys(c.channels)) {
			ch := c.channels[id]
			if ch.closing {
				continue
			}
			info.Channels = append(info.Channels, ChannelInfo{
				ID:        id,
				Confirm:   ch.confirm,
				Prefetch:  ch.prefetch,
				Consumers: slices.Sorted(maps.Keys(ch.consumers)),
				Unacked:   len(ch.unacked),
			})
		}
		infos = append(infos, info)
	}
	return infos
}

// Drop closes connection number n abruptly, as a lost network does: the
// client reads the end of the stream with no connection.close. Its unacked
// messages go back to their queues at once. It reports whether n was open.
func (s *Server) Drop(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[n]
	if c == nil {
		return false
	}
	s.releaseConnLocked(c)
	c.kill()
	return true
}

// CloseChannel closes channel id of connection n from the server's side
// with code and text, as RabbitMQ does when a consumer exceeds its timeout
// (406 PRECONDITION_FAILED). It reports whether the channel was open.
func (s *Server) CloseChannel(n int, id uint16, code uint16, text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[n]
	if c == nil || c.channels[id] == nil || c.channels[id].closing {
		return false
	}
	s.channelErrorLocked(c.channels[id], code, text, 0, 0)
	return true
}

// Declared returns the queue.declare methods received, in order.
func (s *Server) Declared() []Declaration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.declared)
}

// Published returns the messages published, in the order received.
func (s *Server) Published() []Publishing {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.published)
}

// Settled returns the deliveries that clients settled, in order.
func (s *Server) Settled() []Settlement {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.settled)
}

// Enqueue puts msg in queue as if published to it, creating the queue
// (durable, without arguments) if it does not exist, and delivers it if a
// consumer can take it. It fails only if msg's headers hold a type that
// AMQP cannot carry.
func (s *Server) Enqueue(queueName string, msg amqp.Publishing) error {
	if err := msg.Headers.Validate(); err != nil {
		return fmt.Errorf("amqptest: enqueue to %q: %w", queueName, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueName]
	if q == nil {
		q = &queue{name: queueName, durable: true, args: amqp.Table{}}
		s.queues[queueName] = q
	}
	q.ready = append(q.ready, &message{routingKey: queueName, pub: clonePublishing(msg)})
	s.deliverLocked(q)
	return nil
}

// Queue returns the state of the named queue, and whether it exists.
func (s *Server) Queue(name string) (QueueInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[name]
	if q == nil {
		return QueueInfo{}, false
	}
	info := QueueInfo{Name: name, Durable: q.durable, Args: maps.Clone(q.args), Ready: len(q.ready), Consumers: len(q.consumers)}
	for _, c := range s.conns {
		for _, ch := range c.channels {
			for _, d := range ch.unacked {
				if d.q == q {
					info.Unacked++
				}
			}
		}
	}
	return info, true
}

// DeleteQueue deletes the named queue and its messages, and cancels its
// consumers with a basic.cancel from the server, as RabbitMQ does. Acks of
// its unacked messages are still accepted. It reports whether the queue
// existed.
func (s *Server) DeleteQueue(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[name]
	if q == nil {
		return false
	}
	s.cancelConsumersLocked(q)
	delete(s.queues, name)
	return true
}

// CancelConsumers cancels the consumers of the named queue with a
// basic.cancel from the server, keeping the queue, as RabbitMQ does when a
// policy changes or a quorum queue loses its leader. It returns how many it
// cancelled.
func (s *Server) CancelConsumers(queueName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueName]
	if q == nil {
		return 0
	}
	return s.cancelConsumersLocked(q)
}

// SetAlarm raises or clears a resource alarm. While it is raised, the
// server blocks a connection when it publishes, as RabbitMQ does under a
// memory or disk alarm: at the first content frame of a publish (its
// header, or a body frame) that the connection sends, the server takes
// that frame, sends connection.blocked and reads nothing more from the
// connection, so that the rest of its publishes, and anything else it
// sends, wait. The publish whose header blocks the connection is taken,
// and confirmed, if it has no body; otherwise its body waits too. Raising
// the alarm sends nothing: a connection that does not publish under it is
// never blocked, whatever it did before. Clearing the alarm sends
// connection.unblocked to the blocked connections and reads on.
func (s *Server) SetAlarm(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on == s.alarm {
		return
	}
	s.alarm = on
	if on {
		s.alarmOff = make(chan struct{})
		return
	}
	close(s.alarmOff)
	for _, c := range s.conns {
		if c.blocked {
			c.blocked = false
			c.method(0, 10, 61, nil) // connection.unblocked
		}
	}
}

// contentReceivedLocked follows each content frame of a publish that c
// sent, once the frame is taken: under an alarm it blocks c, once (see
// SetAlarm).
func (s *Server) contentReceivedLocked(c *conn) {
	if !s.alarm || c.blocked || c.gone {
		return
	}
	c.blocked = true
	c.method(0, 10, 60, func(e *enc) { e.shortstr("low on memory") }) // connection.blocked
}

func (s *Server) cancelConsumersLocked(q *queue) int {
	n := len(q.consumers)
	for _, cons := range q.consumers {
		delete(cons.ch.consumers, cons.tag)
		cons.ch.conn.method(cons.ch.id, 60, 30, func(e *enc) { // basic.cancel
			e.shortstr(cons.tag)
			e.bits(true) // no-wait, as RabbitMQ sends it
		})
	}
	q.consumers = nil
	return n
}

// deliverLocked hands q's ready messages to its consumers, in turn, as far
// as their prefetch allows.
func (s *Server) deliverLocked(q *queue) {
	for len(q.ready) > 0 {
		cons := q.nextConsumer()
		if cons == nil {
			return
		}
		m := q.ready[0]
		q.ready[0] = nil
		q.ready = q.ready[1:]
		ch := cons.ch
		ch.deliveryTag++
		if !cons.noAck {
			ch.unacked[ch.deliveryTag] = &delivery{msg: m, q: q, cons: cons}
			cons.unacked++
		}
		ch.conn.method(ch.id, 60, 60, func(e *enc) { // basic.deliver
			e.shortstr(cons.tag)
			e.u64(ch.deliveryTag)
			e.bits(m.redelivered)
			e.shortstr(m.exchange)
			e.shortstr(m.routingKey)
		})
		ch.conn.content(ch.id, m.pub)
	}
}

// nextConsumer returns the next consumer in turn that can take a message,
// or nil.
func (q *queue) nextConsumer() *consumer {
	for i := range q.consumers {
		cons := q.consumers[(q.next+i)%len(q.consumers)]
		if cons.ch.conn.gone || cons.ch.closing {
			continue
		}
		if cons.prefetch == 0 || cons.noAck || cons.unacked < cons.prefetch {
			q.next = (q.next + i + 1) % len(q.consumers)
			return cons
		}
	}
	return nil
}

func (q *queue) removeConsumer(cons *consumer) {
	q.consumers = slices.DeleteFunc(q.consumers, func(c *consumer) bool { return c == cons })
}

// requeueLocked puts msgs back at the head of their queue, in order, if the
// queue still exists, and delivers them again.
func (s *Server) requeueLocked(q *queue, msgs []*message) {
	if s.queues[q.name] != q {
		return // deleted: the messages go with it
	}
	for _, m := range msgs {
		m.redelivered = true
	}
	q.ready = append(slices.Clone(msgs), q.ready...)
	s.deliverLocked(q)
}

// releaseChannelLocked ends ch's consumers and requeues its unacked
// messages, as the broker does when a channel closes.
func (s *Server) releaseChannelLocked(ch *channel) {
	for _, cons := range ch.consumers {
		cons.q.removeConsumer(cons)
	}
	ch.consumers = make(map[string]*consumer)
	byQueue := make(map[*queue][]*message)
	var order []*queue
	for _, tag := range slices.Sorted(maps.Keys(ch.unacked)) {
		d := ch.unacked[tag]
		if _, seen := byQueue[d.q]; !seen {
			order = append(order, d.q)
		}
		byQueue[d.q] = append(byQueue[d.q], d.msg)
	}
	ch.unacked = make(map[uint64]*delivery)
	for _, q := range order {
		s.requeueLocked(q, byQueue[q])
	}
	// Other consumers of the queues may have room now.
	for _, q := range s.queues {
		s.deliverLocked(q)
	}
}

// releaseConnLocked forgets c, as the broker does with a closed connection.
func (s *Server) releaseConnLocked(c *conn) {
	if c.gone {
		return
	}
	c.gone = true
	delete(s.conns, c.num)
	for _, ch := range c.channels {
		s.releaseChannelLocked(ch)
	}
}

func clonePublishing(p amqp.Publishing) amqp.Publishing {
	p.Headers = maps.Clone(p.Headers)
	p.Body = slices.Clone(p.Body)
	return p
}

// WaitFor is testutil.Eventually with a timeout of 5 s: it polls cond
// until it holds, and fails the test if it does not within 5 s. Tests use
// it instead of sleeping for a state the server or its client reaches
// asynchronously.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what, cond)
}
