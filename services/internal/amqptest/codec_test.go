package amqptest

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestTableRoundTrip encodes a table of every field type and decodes it
// again, as a client would see it; its bytes are those the library writes.
func TestTableRoundTrip(t *testing.T) {
	in := amqp.Table{
		"bool": true, "int8": int8(-2), "uint8": uint8(200), "int16": int16(-300), "uint16": uint16(60000),
		"int32": int32(-70000), "uint32": uint32(4000000000), "int": -5, "int64": int64(-1 << 40),
		"float32": float32(1.5), "float64": -2.25, "decimal": amqp.Decimal{Scale: 2, Value: 12345},
		"string": "text", "bytes": []byte{1, 2}, "array": []any{"a", int32(1)},
		"time": time.Unix(1700000000, 0), "table": amqp.Table{"k": "v"}, "void": nil,
	}
	var e enc
	e.table(in)
	d := &dec{b: e.Bytes()}
	got := d.table()
	if d.err != nil || len(d.b) != 0 {
		t.Fatalf("decoding left %d bytes, error %v", len(d.b), d.err)
	}
	want := amqp.Table{}
	for k, v := range in {
		want[k] = v
	}
	want["int"] = int64(-5) // written as an int64, as the library does
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %#v,\nwant %#v", got, want)
	}

	// Each number follows its type letter, big-endian, in its own size.
	for _, tc := range []struct {
		v    any
		want []byte
	}{
		{int8(-2), []byte{'b', 0xfe}},
		{int16(-300), []byte{'s', 0xfe, 0xd4}},
		{uint32(4000000000), []byte{'i', 0xee, 0x6b, 0x28, 0x00}},
		{7, []byte{'l', 0, 0, 0, 0, 0, 0, 0, 7}},
		{float32(1.5), []byte{'f', 0x3f, 0xc0, 0, 0}},
	} {
		var e enc
		e.value(tc.v)
		if !bytes.Equal(e.Bytes(), tc.want) {
			t.Errorf("%T %v encoded as % x, want % x", tc.v, tc.v, e.Bytes(), tc.want)
		}
	}
}
