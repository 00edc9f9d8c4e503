package dispatch

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// messageParam is the CGI param that holds the whole message but its body,
// as JSON (messageJSON); messageOmitted names it in omittedParam when it is
// too large for one FastCGI record.
const (
	messageParam   = "HTTP_X_FPMQ_MESSAGE"
	messageOmitted = "x-fpmq-message"
)

// messageProperties are the AMQP properties of a message as the worker reads
// them in messageParam, in the order of the AMQP specification. Properties
// the message lacks are left out; the priority is always there (0 when
// unset, as HTTP_X_PRIORITY says).
type messageProperties struct {
	ContentType     string `json:"content_type,omitempty"`
	ContentEncoding string `json:"content_encoding,omitempty"`
	DeliveryMode    uint8  `json:"delivery_mode,omitempty"`
	Priority        uint8  `json:"priority"`
	CorrelationID   string `json:"correlation_id,omitempty"`
	ReplyTo         string `json:"reply_to,omitempty"`
	Expiration      string `json:"expiration,omitempty"`
	MessageID       string `json:"message_id,omitempty"`
	// Timestamp is in Unix seconds, as AMQP keeps it.
	Timestamp *int64 `json:"timestamp,omitempty"`
	Type      string `json:"type,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	AppID     string `json:"app_id,omitempty"`
}

// messageJSON returns m's properties and headers as one JSON object,
// {"properties": {...}, "headers": {...}}, losslessly: the worker's
// HTTP_X_FPMQ_MESSAGE. The message id is the one Handle gave m (identity).
// Header values keep their structure and type as far as JSON has them
// (headerJSON); the rest are one-key objects. The result holds no control
// characters, raw or escaped as such, beyond JSON's own escapes.
func messageJSON(m amqp.Delivery) ([]byte, error) {
	props := messageProperties{
		ContentType: m.ContentType, ContentEncoding: m.ContentEncoding,
		DeliveryMode: m.DeliveryMode, Priority: m.Priority,
		CorrelationID: m.CorrelationId, ReplyTo: m.ReplyTo, Expiration: m.Expiration,
		MessageID: m.MessageId, Type: m.Type, UserID: m.UserId, AppID: m.AppId,
	}
	if !m.Timestamp.IsZero() {
		ts := m.Timestamp.Unix()
		props.Timestamp = &ts
	}
	// A nil table is an amqp.Table still: an empty object.
	headers := headerJSON(m.Headers)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Properties messageProperties `json:"properties"`
		Headers    any               `json:"headers"`
	}{props, headers})
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	// DEL is the one control character JSON leaves raw; it only occurs in
	// strings, where its escape means the same.
	out := bytes.ReplaceAll(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte{0x7f}, []byte(`\u007f`))
	return out, nil
}

// headerJSON returns the AMQP field value v as a value encoding/json writes
// as the contract says: a table as an object (keys sorted), an array as an
// array, a string (valid UTF-8) as a string, a bool as a bool, integers as
// numbers, floats as numbers with a fraction or exponent (so that PHP
// decodes them as floats), nil as null; and the types JSON lacks as
// one-key objects: a byte array, or a string that is not UTF-8, as
// {"bytes": base64}, a timestamp as {"timestamp": Unix seconds}, a decimal
// as {"decimal": "12.34"}. A float that is NaN or infinite, which JSON
// cannot hold, and a type AMQP does not have, become null.
func headerJSON(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		obj := make(map[string]any, len(v))
		for k, field := range v {
			obj[k] = headerJSON(field)
		}
		return obj
	case []any:
		arr := make([]any, len(v))
		for i, field := range v {
			arr[i] = headerJSON(field)
		}
		return arr
	case string:
		if !utf8.ValidString(v) {
			return map[string]any{"bytes": base64.StdEncoding.EncodeToString([]byte(v))}
		}
		return v
	case []byte:
		return map[string]any{"bytes": base64.StdEncoding.EncodeToString(v)}
	case bool:
		return v
	case time.Time:
		return map[string]any{"timestamp": json.Number(strconv.FormatInt(v.Unix(), 10))}
	case amqp.Decimal:
		return map[string]any{"decimal": decimalText(v)}
	case float32:
		return floatJSON(float64(v), 32)
	case float64:
		return floatJSON(v, 64)
	}
	if n, ok := integerText(v); ok {
		return json.Number(n)
	}
	return nil
}

// integerText returns v, an integer of any type AMQP has, in decimal.
func integerText(v any) (string, bool) {
	switch v := v.(type) {
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	}
	return "", false
}

// floatJSON returns f, of the given bit size, as the shortest JSON number
// that reads back as the same value, with ".0" added to a whole number; nil
// for NaN and infinities.
func floatJSON(f float64, bits int) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	s := strconv.FormatFloat(f, 'g', -1, bits)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return json.Number(s)
}

// decimalText writes an AMQP decimal, Value × 10^-Scale, in decimal
// notation: {Scale: 2, Value: 1234} is "12.34", {3, -5} is "-0.005".
func decimalText(d amqp.Decimal) string {
	digits := strconv.FormatInt(int64(d.Value), 10)
	sign := ""
	if d.Value < 0 {
		sign, digits = "-", digits[1:]
	}
	scale := int(d.Scale)
	if scale == 0 {
		return sign + digits
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
}
