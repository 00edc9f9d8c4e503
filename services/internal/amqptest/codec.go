package amqptest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Frame types and the frame end octet, AMQP 0-9-1 section 4.2.3.
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE
)

// defaultFrameMax is the frame size the server proposes and uses until the
// client has answered connection.tune.
const defaultFrameMax = 131072

// frame is one frame as read from the client, without the frame end.
type frame struct {
	typ     byte
	channel uint16
	payload []byte
}

// readFrame reads one frame. The size is bounded so that a corrupt length
// cannot make the server allocate gigabytes.
func readFrame(r *bufio.Reader) (frame, error) {
	var h [7]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	size := binary.BigEndian.Uint32(h[3:])
	if size > 16<<20 {
		return frame{}, fmt.Errorf("frame of %d bytes", size)
	}
	payload := make([]byte, size+1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return frame{}, err
	}
	if payload[size] != frameEnd {
		return frame{}, errors.New("frame without its end octet")
	}
	return frame{typ: h[0], channel: binary.BigEndian.Uint16(h[1:]), payload: payload[:size]}, nil
}

// encodeFrame returns the bytes of one frame.
func encodeFrame(typ byte, channel uint16, payload []byte) []byte {
	f := make([]byte, 0, 8+len(payload))
	f = append(f, typ)
	f = binary.BigEndian.AppendUint16(f, channel)
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, frameEnd)
}

// enc encodes AMQP fields, big-endian as the protocol wants.
type enc struct{ bytes.Buffer }

func (e *enc) u8(v uint8)   { e.WriteByte(v) }
func (e *enc) u16(v uint16) { e.Write(binary.BigEndian.AppendUint16(nil, v)) }
func (e *enc) u32(v uint32) { e.Write(binary.BigEndian.AppendUint32(nil, v)) }
func (e *enc) u64(v uint64) { e.Write(binary.BigEndian.AppendUint64(nil, v)) }

// bits packs consecutive bit fields into one octet, the first in the lowest
// bit.
func (e *enc) bits(bs ...bool) {
	var v uint8
	for i, b := range bs {
		if b {
			v |= 1 << i
		}
	}
	e.u8(v)
}

func (e *enc) shortstr(s string) {
	if len(s) > 255 {
		s = s[:255]
	}
	e.u8(uint8(len(s)))
	e.WriteString(s)
}

func (e *enc) longstr(s string) {
	e.u32(uint32(len(s)))
	e.WriteString(s)
}

// table encodes a field table with the type letters that RabbitMQ and the
// library use. Values of other types are written as void.
func (e *enc) table(t amqp.Table) {
	var inner enc
	for k, v := range t {
		inner.shortstr(k)
		inner.value(v)
	}
	e.u32(uint32(inner.Len()))
	e.Write(inner.Bytes())
}

// numberTypes are the type letters of the numbers a field table holds, as
// RabbitMQ and the library write them; each number follows its letter
// big-endian, in its own size (binary.Write).
var numberTypes = map[reflect.Type]byte{
	reflect.TypeFor[int8](): 'b', reflect.TypeFor[uint8](): 'B',
	reflect.TypeFor[int16](): 's', reflect.TypeFor[uint16](): 'u',
	reflect.TypeFor[int32](): 'I', reflect.TypeFor[uint32](): 'i',
	reflect.TypeFor[int64]():   'l',
	reflect.TypeFor[float32](): 'f', reflect.TypeFor[float64](): 'd',
}

func (e *enc) value(v any) {
	if n, ok := v.(int); ok {
		v = int64(n) // written as an int64, as the library does
	}
	if typ, ok := numberTypes[reflect.TypeOf(v)]; ok {
		e.u8(typ)
		binary.Write(e, binary.BigEndian, v) // cannot fail: a number, into a bytes.Buffer
		return
	}
	switch v := v.(type) {
	case bool:
		e.u8('t')
		e.bits(v)
	case amqp.Decimal:
		e.u8('D')
		e.u8(v.Scale)
		e.u32(uint32(v.Value))
	case string:
		e.u8('S')
		e.longstr(v)
	case []byte:
		e.u8('x')
		e.u32(uint32(len(v)))
		e.Write(v)
	case []any:
		e.u8('A')
		var inner enc
		for _, x := range v {
			inner.value(x)
		}
		e.u32(uint32(inner.Len()))
		e.Write(inner.Bytes())
	case time.Time:
		e.u8('T')
		e.u64(uint64(v.Unix()))
	case amqp.Table:
		e.u8('F')
		e.table(v)
	default:
		e.u8('V')
	}
}

// properties encodes the basic properties of p, the flags first.
func (e *enc) properties(p amqp.Publishing) {
	var flags uint16
	var list enc
	str := func(bit int, s string) {
		if s != "" {
			flags |= 1 << bit
			list.shortstr(s)
		}
	}
	str(15, p.ContentType)
	str(14, p.ContentEncoding)
	if p.Headers != nil {
		flags |= 1 << 13
		list.table(p.Headers)
	}
	if p.DeliveryMode != 0 {
		flags |= 1 << 12
		list.u8(p.DeliveryMode)
	}
	if p.Priority != 0 {
		flags |= 1 << 11
		list.u8(p.Priority)
	}
	str(10, p.CorrelationId)
	str(9, p.ReplyTo)
	str(8, p.Expiration)
	str(7, p.MessageId)
	if !p.Timestamp.IsZero() {
		flags |= 1 << 6
		list.u64(uint64(p.Timestamp.Unix()))
	}
	str(5, p.Type)
	str(4, p.UserId)
	str(3, p.AppId)
	e.u16(flags)
	e.Write(list.Bytes())
}

// errMalformed means the client sent fields that do not decode.
var errMalformed = errors.New("malformed frame")

// dec decodes AMQP fields. A read past the end sets err and yields zero
// values, so that a method's arguments are checked once, after reading.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.err = errMalformed
		return make([]byte, max(n, 0))
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() uint8   { return d.take(1)[0] }
func (d *dec) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *dec) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *dec) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

// bit reports whether bit i of a packed octet is set.
func bit(octet uint8, i int) bool { return octet&(1<<i) != 0 }

func (d *dec) shortstr() string { return string(d.take(int(d.u8()))) }
func (d *dec) longstr() string  { return string(d.take(int(d.u32()))) }

func (d *dec) table() amqp.Table {
	inner := &dec{b: d.take(int(d.u32()))}
	t := amqp.Table{}
	for inner.err == nil && len(inner.b) > 0 {
		k := inner.shortstr()
		t[k] = inner.value()
	}
	if inner.err != nil && d.err == nil {
		d.err = inner.err
	}
	return t
}

func (d *dec) value() any {
	switch typ := d.u8(); typ {
	case 't':
		return d.u8() != 0
	case 'b':
		return int8(d.u8())
	case 'B':
		return d.u8()
	case 's':
		return int16(d.u16())
	case 'u':
		return d.u16()
	case 'I':
		return int32(d.u32())
	case 'i':
		return d.u32()
	case 'l':
		return int64(d.u64())
	case 'f':
		return math.Float32frombits(d.u32())
	case 'd':
		return math.Float64frombits(d.u64())
	case 'D':
		return amqp.Decimal{Scale: d.u8(), Value: int32(d.u32())}
	case 'S':
		return d.longstr()
	case 'x':
		return bytes.Clone(d.take(int(d.u32())))
	case 'A':
		inner := &dec{b: d.take(int(d.u32()))}
		var a []any
		for inner.err == nil && len(inner.b) > 0 {
			a = append(a, inner.value())
		}
		if inner.err != nil && d.err == nil {
			d.err = inner.err
		}
		return a
	case 'T':
		return time.Unix(int64(d.u64()), 0)
	case 'F':
		return d.table()
	case 'V':
		return nil
	default:
		d.err = fmt.Errorf("%w: field type %q", errMalformed, typ)
		return nil
	}
}

// properties decodes the basic properties that follow a content header's
// body size into p.
func (d *dec) properties(p *amqp.Publishing) {
	flags := d.u16()
	// A set bit 0 would announce a further flags word, which no client uses.
	has := func(i int) bool { return flags&(1<<i) != 0 }
	if has(15) {
		p.ContentType = d.shortstr()
	}
	if has(14) {
		p.ContentEncoding = d.shortstr()
	}
	if has(13) {
		p.Headers = d.table()
	}
	if has(12) {
		p.DeliveryMode = d.u8()
	}
	if has(11) {
		p.Priority = d.u8()
	}
	if has(10) {
		p.CorrelationId = d.shortstr()
	}
	if has(9) {
		p.ReplyTo = d.shortstr()
	}
	if has(8) {
		p.Expiration = d.shortstr()
	}
	if has(7) {
		p.MessageId = d.shortstr()
	}
	if has(6) {
		p.Timestamp = time.Unix(int64(d.u64()), 0)
	}
	if has(5) {
		p.Type = d.shortstr()
	}
	if has(4) {
		p.UserId = d.shortstr()
	}
	if has(3) {
		p.AppId = d.shortstr()
	}
	if has(2) {
		d.shortstr() // reserved (cluster-id)
	}
}
