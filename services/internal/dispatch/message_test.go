package dispatch

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestMessageJSON encodes a message with every AMQP field type amqp091-go
// decodes, nested in tables and arrays, and compares the JSON byte for
// byte: keys sorted, numbers exact, the typed one-key objects, and no raw
// control character.
func TestMessageJSON(t *testing.T) {
	m := amqp.Delivery{
		ContentType: "application/json", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 5,
		CorrelationId: "c-1", ReplyTo: "replies", Expiration: "60000", MessageId: "m-1",
		Timestamp: time.Unix(1764434000, 0), Type: "send-mail", UserId: "fpmq", AppId: "shop",
		Headers: amqp.Table{
			"string":  "Grüße <b>&</b> \"q\" \\ \n\t\x7f",
			"latin1":  "caf\xe9",
			"bytes":   []byte{0, 1, 0xfe, 0xff},
			"bool":    true,
			"false":   false,
			"int8":    int8(-128),
			"uint8":   uint8(255),
			"int16":   int16(-32768),
			"uint16":  uint16(65535),
			"int32":   int32(-2147483648),
			"uint32":  uint32(4294967295),
			"int64":   int64(math.MaxInt64),
			"int":     -7,
			"float32": float32(0.1),
			"float64": 2.5e-7,
			"whole":   3.0,
			"big":     1e21,
			"nan":     math.NaN(),
			"inf":     math.Inf(-1),
			"nil":     nil,
			"decimal": amqp.Decimal{Scale: 2, Value: 1234},
			"time":    time.Unix(1700000000, 0).UTC(),
			"table": amqp.Table{
				"nested": amqp.Table{"deeper": []any{int32(1), "two", amqp.Table{"three": 3.5}}},
				"empty":  amqp.Table{},
			},
			"array":     []any{[]any{}, []any{nil, false}, amqp.Decimal{Scale: 3, Value: -5}, []byte("x"), time.Unix(0, 0)},
			"x-laravel": amqp.Table{"attempts": int16(2)},
		},
	}
	got, err := messageJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"properties":{"content_type":"application/json","content_encoding":"gzip","delivery_mode":2,"priority":5,` +
		`"correlation_id":"c-1","reply_to":"replies","expiration":"60000","message_id":"m-1","timestamp":1764434000,` +
		`"type":"send-mail","user_id":"fpmq","app_id":"shop"},"headers":{` +
		`"array":[[],[null,false],{"decimal":"-0.005"},{"bytes":"eA=="},{"timestamp":0}],` +
		`"big":1e+21,"bool":true,"bytes":{"bytes":"AAH+/w=="},"decimal":{"decimal":"12.34"},"false":false,` +
		`"float32":0.1,"float64":2.5e-07,"inf":null,"int":-7,"int16":-32768,"int32":-2147483648,` +
		`"int64":9223372036854775807,"int8":-128,"latin1":{"bytes":"Y2Fm6Q=="},"nan":null,"nil":null,` +
		`"string":"Grüße <b>&</b> \"q\" \\ \n\t\u007f",` +
		`"table":{"empty":{},"nested":{"deeper":[1,"two",{"three":3.5}]}},"time":{"timestamp":1700000000},` +
		`"uint16":65535,"uint32":4294967295,"uint8":255,"whole":3.0,"x-laravel":{"attempts":2}}}`
	if string(got) != want {
		t.Errorf("messageJSON\n got %s\nwant %s", got, want)
	}
	if i := strings.IndexFunc(string(got), isControl); i >= 0 {
		t.Errorf("control character at %d: %q", i, got[i:])
	}
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil {
		t.Errorf("not JSON: %v", err)
	}
}

// TestMessageJSONLeavesOutWhatIsMissing: a message with no properties and
// no headers has only its priority, and an empty headers object.
func TestMessageJSONLeavesOutWhatIsMissing(t *testing.T) {
	got, err := messageJSON(amqp.Delivery{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"properties":{"priority":0},"headers":{}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestDecimalText(t *testing.T) {
	for _, tc := range []struct {
		d    amqp.Decimal
		want string
	}{
		{amqp.Decimal{Scale: 0, Value: 0}, "0"},
		{amqp.Decimal{Scale: 0, Value: -42}, "-42"},
		{amqp.Decimal{Scale: 2, Value: 1234}, "12.34"},
		{amqp.Decimal{Scale: 2, Value: -1234}, "-12.34"},
		{amqp.Decimal{Scale: 4, Value: 1234}, "0.1234"},
		{amqp.Decimal{Scale: 3, Value: 5}, "0.005"},
		{amqp.Decimal{Scale: 3, Value: -5}, "-0.005"},
		{amqp.Decimal{Scale: 1, Value: 0}, "0.0"},
		{amqp.Decimal{Scale: 2, Value: math.MinInt32}, "-21474836.48"},
	} {
		if got := decimalText(tc.d); got != tc.want {
			t.Errorf("decimalText(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
