// Package job defines the job message that the caller publishes and the
// daemon consumes, and turns a job into the form body that php/worker.php
// reads from $_POST, byte for byte as the original PHP system built it.
package job

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrMalformed means that a message is not a job. Every error Decode returns
// wraps it and says why.
var ErrMalformed = errors.New("malformed job")

// maxDepth is the deepest nesting of objects and arrays that Decode accepts.
// It is the default of PHP's json_decode, so every message the original
// system decoded still decodes, and it bounds Decode's recursion.
const maxDepth = 512

// maxForm bounds the form body. Every field repeats the names of all the
// objects and arrays around it, so without a bound a deeply nested message
// of a few megabytes could take gigabytes. 8 MiB is PHP's default
// post_max_size: php-fpm drops a larger body and worker.php gets no fields.
const maxForm = 8 << 20

// shortPrefix starts the only message shape the caller sends.
const shortPrefix = `{"number":`

// Job is one decoded job message. The zero Job is the job {"number":0}.
type Job struct {
	// Number is the value of the message's "number" field.
	Number int64

	// form is the form body that Decode built from all the fields. It is
	// empty when the body follows from Number alone, so that decoding the
	// common {"number":N} message does not allocate.
	form string
}

// Decode decodes one job message: a JSON object with a "number" member that
// is an integer literal (optional '-', digits: no fraction, no exponent)
// within int64, either as a JSON number or as a JSON string holding one, as
// the original PHP caller sent it. Other members are kept, in message order,
// for Form. If "number" occurs more than once, the last one counts.
//
// Decode is strict: the body must be exactly one JSON value with nothing but
// white space after it, valid UTF-8, without unpaired UTF-16 surrogates in
// escapes (PHP's json_decode rejects both), nested at most 512 levels deep,
// with a form body (see Form) of at most 8 MiB.
// Every error wraps ErrMalformed. Decode does not retain body.
func Decode(body []byte) (Job, error) {
	if n, ok := decodeShort(body); ok {
		return Job{Number: n}, nil
	}
	return decodeFull(body)
}

// decodeShort decodes the shape the caller sends, {"number":N} or
// {"number":"N"}, where N is exactly how strconv.FormatInt writes an int64.
// Form rebuilds such a job's body from Number alone. ok is false for any
// other body, which decodeFull then handles.
func decodeShort(body []byte) (n int64, ok bool) {
	lit, ok := bytes.CutPrefix(body, []byte(shortPrefix))
	if !ok {
		return 0, false
	}
	lit, ok = bytes.CutSuffix(lit, []byte("}"))
	if !ok {
		return 0, false
	}
	if len(lit) >= 2 && lit[0] == '"' && lit[len(lit)-1] == '"' {
		lit = lit[1 : len(lit)-1]
	}
	n, err := parseInt(lit)
	if err != nil {
		return 0, false
	}
	var buf [20]byte
	return n, bytes.Equal(strconv.AppendInt(buf[:0], n, 10), lit)
}

// decodeFull decodes any body, building the form body as it goes.
func decodeFull(body []byte) (Job, error) {
	d := decoder{data: body}
	d.skipSpace()
	if d.pos == len(body) {
		return Job{}, malformed("empty body")
	}
	// Checking the whole body up front is simpler than checking every
	// string, and bytes outside strings must be ASCII anyway.
	if !utf8.Valid(body) {
		return Job{}, malformed("not valid UTF-8")
	}
	k, _, err := d.value()
	if err != nil {
		return Job{}, err
	}
	d.skipSpace()
	if d.pos < len(body) {
		return Job{}, malformed("trailing data after the JSON value at offset %d", d.pos)
	}
	if k != kindObject {
		return Job{}, malformed("JSON %s, not an object", k)
	}
	if !d.seen {
		return Job{}, malformed(`no "number" field`)
	}
	if d.numErr != nil {
		return Job{}, d.numErr
	}
	return Job{Number: d.number, form: string(d.form)}, nil
}

// Form returns the job's fields form-encoded exactly like PHP's
// http_build_query applied to the json_decode'd message (PHP_QUERY_RFC1738):
// fields in message order, joined by '&'; names and values escaped like PHP's
// urlencode; true as 1, false as 0; null fields, empty arrays and empty
// objects left out; nested values named key%5Bsub%5D (arrays indexed from 0);
// numbers as their JSON literal; strings as their decoded value.
//
// Unlike PHP, numbers keep their literal: 1.50 stays 1.50, and integers
// beyond int64 are not turned into floats. A repeated name is repeated in the
// body, and PHP's form parser keeps the last one, as Decode does for Number.
func (j Job) Form() []byte {
	if j.form == "" {
		b := make([]byte, 0, len("number=")+20)
		return strconv.AppendInt(append(b, "number="...), j.Number, 10)
	}
	return []byte(j.form)
}

// AppendJSON appends the message for a job with just a number, as the caller
// publishes it: {"number":42}.
func AppendJSON(dst []byte, number int64) []byte {
	dst = append(dst, shortPrefix...)
	dst = strconv.AppendInt(dst, number, 10)
	return append(dst, '}')
}

// Marshal returns the message for a job with just a number: {"number":42}.
func Marshal(number int64) []byte {
	return AppendJSON(make([]byte, 0, len(shortPrefix)+21), number)
}

// malformed returns an error that wraps ErrMalformed with a reason.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

var (
	errNotInteger = errors.New("not an integer")
	errRange      = errors.New("out of the int64 range")
)

// parseInt parses an optional '-' followed by one or more ASCII digits as a
// base-10 int64, without allocating. Unlike strconv.ParseInt it rejects '+'.
func parseInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, errNotInteger
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var n uint64
	overflow := false
	// Keep scanning after an overflow, so that "99999999999999999999x" is
	// reported as not an integer rather than as out of range.
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotInteger
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			overflow = true
		}
		n = n*10 + d
	}
	if overflow {
		return 0, errRange
	}
	if neg {
		// For n == 1<<63 the conversion wraps to math.MinInt64, which is
		// also its own negation, so the result is right.
		return -int64(n), nil
	}
	return int64(n), nil
}

// kind is the type of a JSON value.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// decoder is a strict JSON scanner that appends the form fields of the value
// it decodes to form, and notes the top-level "number" member on the way.
type decoder struct {
	data  []byte
	pos   int
	depth int // objects and arrays entered and not yet left

	key     []byte // form-encoded name of the value being decoded
	form    []byte // form body so far
	scratch []byte // the last decoded string, reused

	seen   bool  // a top-level "number" member was found
	number int64 // value of the last "number" member
	numErr error // why the last "number" member is not a valid number
}

// syntax returns the error for invalid JSON at d.pos.
func (d *decoder) syntax(what string) error {
	if d.pos >= len(d.data) {
		return malformed("invalid JSON: unexpected end of input")
	}
	return malformed("invalid JSON at offset %d: %s", d.pos, what)
}

// peek returns the byte at d.pos, or 0 at the end of the input (0 is never
// valid where peek is used, so it needs no separate check).
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value decodes the value at d.pos and appends its form fields, named by
// d.key. For a scalar it also returns the form value, valid until the next
// call, so that the caller can check the "number" member.
func (d *decoder) value() (kind, []byte, error) {
	d.skipSpace()
	switch c := d.peek(); {
	case c == '{':
		return kindObject, nil, d.object()
	case c == '[':
		return kindArray, nil, d.array()
	case c == '"':
		s, err := d.str()
		if err != nil {
			return 0, nil, err
		}
		return kindString, s, d.field(s)
	case c == 't':
		return kindBool, nil, d.literal("true", "1")
	case c == 'f':
		return kindBool, nil, d.literal("false", "0")
	case c == 'n':
		return kindNull, nil, d.literal("null", "")
	case c == '-' || '0' <= c && c <= '9':
		lit, err := d.num()
		if err != nil {
			return 0, nil, err
		}
		return kindNumber, lit, d.field(lit)
	default:
		return 0, nil, d.syntax(fmt.Sprintf("unexpected %q", c))
	}
}

// field appends one form field named d.key with value v.
func (d *decoder) field(v []byte) error {
	if len(d.form) > 0 {
		d.form = append(d.form, '&')
	}
	d.form = append(d.form, d.key...)
	d.form = append(d.form, '=')
	d.form = appendEscaped(d.form, v)
	// Checking after the field overshoots the bound by at most one field,
	// whose size the body bounds.
	if len(d.form) > maxForm {
		return malformed("form body longer than %d bytes at offset %d", maxForm, d.pos)
	}
	return nil
}

// pushKey extends d.key with the member name or array index k: k itself at
// the top level, [k] below, as http_build_query names nested values.
func (d *decoder) pushKey(k []byte) {
	if d.depth <= 1 {
		d.key = appendEscaped(d.key, k)
		return
	}
	d.key = append(d.key, "%5B"...)
	d.key = appendEscaped(d.key, k)
	d.key = append(d.key, "%5D"...)
}

// enter steps into the object or array at d.pos.
func (d *decoder) enter() error {
	if d.depth == maxDepth {
		return malformed("nested deeper than %d levels at offset %d", maxDepth, d.pos)
	}
	d.depth++
	d.pos++
	d.skipSpace()
	return nil
}

func (d *decoder) object() error {
	if err := d.enter(); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.skipSpace()
		if d.peek() != '"' {
			return d.syntax("expected a string key")
		}
		k, err := d.str()
		if err != nil {
			return err
		}
		isNumber := d.depth == 1 && string(k) == "number"
		mark := len(d.key)
		d.pushKey(k)
		d.skipSpace()
		if d.peek() != ':' {
			return d.syntax("expected ':' after an object key")
		}
		d.pos++
		vk, v, err := d.value()
		if err != nil {
			return err
		}
		if isNumber {
			d.setNumber(vk, v)
		}
		d.key = d.key[:mark]
		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntax("expected ',' or '}' in an object")
		}
	}
}

func (d *decoder) array() error {
	if err := d.enter(); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for i := int64(0); ; i++ {
		var buf [20]byte
		mark := len(d.key)
		d.pushKey(strconv.AppendInt(buf[:0], i, 10))
		if _, _, err := d.value(); err != nil {
			return err
		}
		d.key = d.key[:mark]
		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntax("expected ',' or ']' in an array")
		}
	}
}

// literal consumes the word true, false or null and appends a field with
// value v unless v is empty (null fields are left out).
func (d *decoder) literal(word, v string) error {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return d.syntax("invalid literal")
	}
	d.pos += len(word)
	if v == "" {
		return nil
	}
	return d.field([]byte(v))
}

// num consumes a number and returns its literal, following the JSON grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) num() ([]byte, error) {
	start := d.pos
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case '1' <= c && c <= '9':
		d.digits()
	default:
		return nil, d.syntax("expected a digit")
	}
	if d.peek() == '.' {
		d.pos++
		if !d.digits() {
			return nil, d.syntax("expected a digit after '.'")
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if !d.digits() {
			return nil, d.syntax("expected a digit in the exponent")
		}
	}
	return d.data[start:d.pos], nil
}

// digits consumes a run of ASCII digits and reports whether it was not empty.
func (d *decoder) digits() bool {
	start := d.pos
	for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos > start
}

// str consumes the string at d.pos and returns its decoded value, valid
// until the next call.
func (d *decoder) str() ([]byte, error) {
	d.pos++ // the opening quote
	out := d.scratch[:0]
	for {
		c := d.peek()
		switch {
		case d.pos == len(d.data):
			return nil, d.syntax("unterminated string")
		case c == '"':
			d.pos++
			d.scratch = out
			return out, nil
		case c == '\\':
			var err error
			if out, err = d.escape(out); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, d.syntax("control character in a string")
		default:
			out = append(out, c)
			d.pos++
		}
	}
}

// escape decodes the escape sequence at d.pos and appends it to out.
func (d *decoder) escape(out []byte) ([]byte, error) {
	d.pos++ // the backslash
	c := d.peek()
	d.pos++
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		r, err := d.hex4()
		if err != nil {
			return nil, err
		}
		if utf16.IsSurrogate(r) {
			if !bytes.HasPrefix(d.data[d.pos:], []byte(`\u`)) {
				return nil, malformed("unpaired UTF-16 surrogate in a string at offset %d", d.pos)
			}
			d.pos += 2
			r2, err := d.hex4()
			if err != nil {
				return nil, err
			}
			if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
				return nil, malformed("unpaired UTF-16 surrogate in a string at offset %d", d.pos)
			}
		}
		return utf8.AppendRune(out, r), nil
	default:
		d.pos--
		return nil, d.syntax("invalid escape in a string")
	}
}

// hex4 consumes the four hex digits of a \u escape.
func (d *decoder) hex4() (rune, error) {
	if len(d.data)-d.pos < 4 {
		return 0, d.syntax("short \\u escape")
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, d.syntax("invalid \\u escape")
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, nil
}

// setNumber records the value of a top-level "number" member.
func (d *decoder) setNumber(k kind, v []byte) {
	d.seen = true
	d.numErr = nil
	var err error
	switch k {
	case kindNumber:
		if bytes.ContainsAny(v, ".eE") {
			d.numErr = malformed(`"number" is not an integer: %s`, clip(v))
			return
		}
		d.number, err = parseInt(v)
	case kindString:
		d.number, err = parseInt(v)
		if err == errNotInteger {
			d.numErr = malformed(`"number" is a string that is not an integer: %q`, clip(v))
			return
		}
	case kindNull:
		d.numErr = malformed(`"number" is null`)
		return
	default:
		d.numErr = malformed(`"number" is %s, not an integer`, withArticle(k))
		return
	}
	if err != nil {
		d.numErr = malformed(`"number" is %s: %s`, err, clip(v))
	}
}

// withArticle returns k's name with its indefinite article.
func withArticle(k kind) string {
	if k == kindArray || k == kindObject {
		return "an " + k.String()
	}
	return "a " + k.String()
}

// clip shortens v for an error message.
func clip(v []byte) string {
	const limit = 40
	if len(v) > limit {
		return string(v[:limit]) + "..."
	}
	return string(v)
}

// appendEscaped appends s escaped like PHP's urlencode: letters, digits and
// "-_." stay, a space becomes '+', every other byte becomes %XX in
// upper-case hex (so '~' becomes %7E, unlike in RFC 3986 escaping).
func appendEscaped(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}
