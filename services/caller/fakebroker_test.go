package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// verdict is how the fake broker settles one published message.
type verdict int

const (
	ack          verdict = iota // confirm it
	nack                        // reject it
	returnIt                    // return it as unroutable, then confirm it, as RabbitMQ does
	ignore                      // never settle it
	hangUp                      // drop the connection without settling it, after all that was sent before
	ackHangUp                   // confirm it, then drop the connection
	abort                       // drop the connection with a TCP reset, which may destroy what was sent before
	closeChannel                // close the channel with an error, keeping the connection
)

// publishedMsg is one basic.publish as the fake broker received it.
type publishedMsg struct {
	exchange, routingKey string
	mandatory            bool
	contentType          string
	deliveryMode         uint8
	messageID            string
	timestamp            time.Time
	body                 string
}

// fakeBroker is just enough of an AMQP 0-9-1 server for the caller: the
// handshake, one channel, queue.declare, confirm.select and basic.publish,
// each publish settled as decide says. It accepts any number of connections,
// one after the other or at once. It lets the tests check the confirm and
// reconnection handling without RabbitMQ.
type fakeBroker struct {
	url           string
	decide        func(seq int) verdict // seq counts publishes from 1, over all connections
	refuse        func(conn int) bool   // if set and true, close connection conn (from 1) before a word
	rejectDeclare bool                  // close the channel on queue.declare, as RabbitMQ on other arguments
	ignoreClose   bool                  // never answer channel.close

	mu        sync.Mutex
	conns     int      // connections accepted
	seq       int      // publishes received
	declared  []string // queue names, "+durable" appended when durable, then " key=value" per argument
	published []publishedMsg
}

// start serves on a loopback port until the test ends.
func (b *fakeBroker) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.url = "amqp://u:secretpw@" + ln.Addr().String() + "/"
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
			b.mu.Lock()
			b.conns++
			refused := b.refuse != nil && b.refuse(b.conns)
			b.mu.Unlock()
			if refused {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
}

func (b *fakeBroker) messages() []publishedMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]publishedMsg(nil), b.published...)
}

func (b *fakeBroker) queues() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.declared...)
}

// connections returns how many connections the broker accepted, refused
// ones included.
func (b *fakeBroker) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

// serve speaks AMQP on one connection until the client closes it or a
// verdict hangs up.
func (b *fakeBroker) serve(c net.Conn) {
	r := bufio.NewReader(c)
	if _, err := io.ReadFull(r, make([]byte, 8)); err != nil { // protocol header
		return
	}
	send := func(typ byte, ch uint16, payload []byte) {
		var f buf
		f.u8(typ)
		f.u16(ch)
		f.u32(uint32(len(payload)))
		f.Write(payload)
		f.u8(0xCE)
		c.Write(f.Bytes())
	}
	method := func(ch, class, id uint16, args func(*buf)) {
		var p buf
		p.u16(class)
		p.u16(id)
		if args != nil {
			args(&p)
		}
		send(1, ch, p.Bytes())
	}
	method(0, 10, 10, func(p *buf) { // connection.start
		p.u8(0)
		p.u8(9)
		p.u32(0) // server properties: an empty table
		p.longstr("PLAIN")
		p.longstr("en_US")
	})

	var (
		msg         publishedMsg
		header      []byte
		body        []byte
		bodySize    uint64
		deliveryTag uint64 // per channel
		inContent   bool
	)
	settle := func(ch uint16) bool {
		inContent = false
		deliveryTag++
		msg.body = string(body)
		b.mu.Lock()
		b.seq++
		seq := b.seq
		b.published = append(b.published, msg)
		b.mu.Unlock()
		tag := func(p *buf) { p.u64(deliveryTag); p.u8(0) }
		switch b.decide(seq) {
		case ack:
			method(ch, 60, 80, tag) // basic.ack
		case nack:
			method(ch, 60, 120, tag) // basic.nack
		case returnIt:
			method(ch, 60, 50, func(p *buf) { // basic.return
				p.u16(312)
				p.shortstr("NO_ROUTE")
				p.shortstr(msg.exchange)
				p.shortstr(msg.routingKey)
			})
			send(2, ch, header)
			send(3, ch, body)
			method(ch, 60, 80, tag)
		case hangUp:
			dropAfterSent(c, r)
			return false
		case ackHangUp:
			method(ch, 60, 80, tag)
			dropAfterSent(c, r)
			return false
		case abort:
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // close sends a reset
			}
			return false
		case closeChannel:
			method(ch, 20, 40, func(p *buf) { // channel.close
				p.u16(406)
				p.shortstr(closeChannelReason)
				p.u16(60)
				p.u16(40)
			})
		}
		return true
	}

	for {
		typ, ch, payload, err := readFrame(r)
		if err != nil {
			return
		}
		switch typ {
		case 2: // content header
			header = append([]byte(nil), payload...)
			bodySize = binary.BigEndian.Uint64(payload[4:12])
			parseProperties(payload[12:], &msg)
			body = body[:0]
			if inContent && bodySize == 0 && !settle(ch) {
				return
			}
		case 3: // content body
			body = append(body, payload...)
			if inContent && uint64(len(body)) == bodySize && !settle(ch) {
				return
			}
		case 1:
			d := &rd{b: payload[4:]}
			switch class, id := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:]); {
			case class == 10 && id == 11: // connection.start-ok
				method(0, 10, 30, func(p *buf) { p.u16(2047); p.u32(131072); p.u16(0) })
			case class == 10 && id == 40: // connection.open
				method(0, 10, 41, func(p *buf) { p.shortstr("") })
			case class == 10 && id == 50: // connection.close
				method(0, 10, 51, nil)
				return
			case class == 20 && id == 10: // channel.open
				method(ch, 20, 11, func(p *buf) { p.longstr("") })
			case class == 20 && id == 40: // channel.close
				if !b.ignoreClose {
					method(ch, 20, 41, nil)
				}
			case class == 50 && id == 10: // queue.declare
				d.u16()
				name := d.shortstr()
				if d.u8()&2 != 0 {
					name += "+durable"
				}
				for _, arg := range d.table() {
					name += " " + arg
				}
				b.mu.Lock()
				b.declared = append(b.declared, name)
				b.mu.Unlock()
				if b.rejectDeclare {
					method(ch, 20, 40, func(p *buf) { // channel.close
						p.u16(406)
						p.shortstr(rejectReason)
						p.u16(50)
						p.u16(10)
					})
					continue
				}
				method(ch, 50, 11, func(p *buf) { p.shortstr(name); p.u32(0); p.u32(0) })
			case class == 85 && id == 10: // confirm.select
				method(ch, 85, 11, nil)
			case class == 60 && id == 40: // basic.publish
				d.u16()
				msg = publishedMsg{exchange: d.shortstr(), routingKey: d.shortstr()}
				msg.mandatory = d.u8()&1 != 0
				inContent = true
			}
		}
	}
}

// rejectReason is RabbitMQ's text when a classic queue is declared over a
// quorum one.
const rejectReason = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'commands' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"

// closeChannelReason is RabbitMQ's text when a message is too large.
const closeChannelReason = "PRECONDITION_FAILED - message size 12 is larger than configured max size 10"

// dropAfterSent ends the connection so that the client gets everything sent
// before: closing a socket with unread input sends a TCP reset instead of
// the end of the stream, and the client's system may then discard what it
// had not read yet. It ignores what the client sends until the client
// closes too, or the test ends.
func dropAfterSent(c net.Conn, r io.Reader) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, r)
}

func readFrame(r *bufio.Reader) (typ byte, ch uint16, payload []byte, err error) {
	var h [7]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	payload = make([]byte, binary.BigEndian.Uint32(h[3:])+1) // with the frame end
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return h[0], binary.BigEndian.Uint16(h[1:]), payload[:len(payload)-1], nil
}

// parseProperties reads the basic properties after the body size.
func parseProperties(p []byte, msg *publishedMsg) {
	flags := binary.BigEndian.Uint16(p)
	d := &rd{b: p[2:]}
	for bit := 15; bit >= 3; bit-- {
		if flags&(1<<bit) == 0 {
			continue
		}
		switch bit {
		case 15:
			msg.contentType = d.shortstr()
		case 13: // headers
			d.b = d.b[4+binary.BigEndian.Uint32(d.b):]
		case 12:
			msg.deliveryMode = d.u8()
		case 11: // priority
			d.u8()
		case 7:
			msg.messageID = d.shortstr()
		case 6:
			msg.timestamp = time.Unix(int64(d.u64()), 0)
		default:
			d.shortstr()
		}
	}
}

// buf encodes AMQP fields.
type buf struct{ bytes.Buffer }

func (b *buf) u8(v uint8)   { b.WriteByte(v) }
func (b *buf) u16(v uint16) { b.Write(binary.BigEndian.AppendUint16(nil, v)) }
func (b *buf) u32(v uint32) { b.Write(binary.BigEndian.AppendUint32(nil, v)) }
func (b *buf) u64(v uint64) { b.Write(binary.BigEndian.AppendUint64(nil, v)) }
func (b *buf) shortstr(s string) {
	b.u8(uint8(len(s)))
	b.WriteString(s)
}
func (b *buf) longstr(s string) {
	b.u32(uint32(len(s)))
	b.WriteString(s)
}

// rd decodes AMQP fields.
type rd struct{ b []byte }

func (d *rd) u8() uint8 {
	v := d.b[0]
	d.b = d.b[1:]
	return v
}
func (d *rd) u16() uint16 {
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}
func (d *rd) u32() uint32 {
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}
func (d *rd) u64() uint64 {
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}
func (d *rd) shortstr() string {
	n := int(d.u8())
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// table decodes a field table as "key=value" entries; a value that is not a
// long string shows as its type letter.
func (d *rd) table() []string {
	t := &rd{b: d.b[:d.u32()]}
	d.b = d.b[len(t.b):]
	var entries []string
	for len(t.b) > 0 {
		key := t.shortstr()
		typ := t.u8()
		if typ != 'S' {
			// The caller sends long strings only; the rest cannot be skipped
			// without decoding every type.
			return append(entries, key+"="+string(typ)+"?")
		}
		n := t.u32()
		entries = append(entries, key+"="+string(t.b[:n]))
		t.b = t.b[n:]
	}
	return entries
}
