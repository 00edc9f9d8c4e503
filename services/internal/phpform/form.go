// Package phpform encodes a job's JSON body in PHP's form encoding: Form
// decodes and checks the body, one JSON object, and returns the form body
// that php/worker.php reads from $_POST, byte for byte what the original PHP
// system sent, http_build_query(json_decode($body, true)). It refuses a body
// PHP's form parser would not hand the worker unchanged (ErrFormMismatch).
// Marshal writes the JSON body the caller publishes.
package phpform

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrMalformed means that a message is not a job: not exactly one JSON
// object as PHP's json_decode would accept it. Errors that wrap it say why.
var ErrMalformed = errors.New("malformed job")

// ErrFormMismatch means that a job is a valid JSON object, but PHP's form
// parser would not give the worker the fields that were published: it would
// rename, drop or merge some of them, or stop at one of its limits. Errors
// that wrap it name the field or the limit.
var ErrFormMismatch = errors.New("job does not survive PHP's form parser")

// Limits are the php.ini limits of the php-fpm pool that parses the form.
// PHP enforces both with at most a warning, so Form checks them instead.
type Limits struct {
	// MaxInputVars is max_input_vars: PHP keeps only this many fields of a
	// form. Zero or less means PHP's default, 1000.
	MaxInputVars int

	// MaxNestingLevel is max_input_nesting_level: PHP drops a field with
	// more levels of brackets in its name (a[b][c] has 2). Zero or less
	// means PHP's default, 64.
	MaxNestingLevel int
}

const (
	// maxDepth is the deepest nesting of objects and arrays that Form
	// accepts: the default depth of PHP's json_decode.
	maxDepth = 512

	// maxForm bounds the form body. Every field repeats the names of all
	// the objects and arrays around it, so without a bound a deeply nested
	// message of a few megabytes could take gigabytes. 8 MiB is PHP's
	// default post_max_size: php-fpm gives the worker no fields at all for
	// a larger body.
	maxForm = 8 << 20

	// shortPrefix starts the only message shape the caller sends.
	shortPrefix = `{"number":`
)

// Form returns the form body (application/x-www-form-urlencoded) for a job
// message body, which must be one JSON object. The fields are encoded like
// PHP's http_build_query with PHP_QUERY_RFC1738 on the json_decode'd object:
// members in message order, joined by '&'; names and values escaped like
// PHP's urlencode; nested values named a%5Bb%5D%5B0%5D, that is a[b][0]
// (arrays indexed from 0); true as 1, false as 0; numbers as their JSON
// literal; strings as their decoded value. Unlike PHP, 1.50 stays 1.50 and
// integers beyond 64 bits stay exact. The object {} gives an empty body.
//
// Errors wrap ErrMalformed if body is empty, is not exactly one JSON value
// with nothing but white space after it, is not valid UTF-8, has a \u escape
// with half a UTF-16 surrogate pair (json_decode rejects both, while
// encoding/json would replace them), nests objects and arrays deeper than
// 512 levels (json_decode's default depth), is not an object, or gives a
// form body over 8 MiB (PHP's default post_max_size).
//
// Errors wrap ErrFormMismatch, naming the field or the limit, if PHP's form
// parser (php_register_variable_ex in php-src main/php_variables.c) would
// give the worker other fields than the message has:
//   - a top-level name that is empty or holds ' ', '.', '[' or NUL: PHP
//     drops leading spaces and empty names, makes ' ' and '.' '_', starts
//     an index at '[' (so "number[]" would land in an array "number"), or
//     '_' for an unmatched one, and cuts the name at NUL;
//   - a nested name that is empty or one white-space byte (PHP reads a[]:
//     a new element), or holds ']' or NUL (PHP ends the index there);
//   - null, [] or {} as a value, for which http_build_query writes nothing;
//   - a member repeated with an object or array after an object or array,
//     which PHP merges where json_decode keeps the last;
//   - more fields than lim.MaxInputVars, or a field under more levels of
//     brackets than lim.MaxNestingLevel.
//
// Form does not retain body, and returns a new slice.
func Form(body []byte, lim Limits) ([]byte, error) {
	if form, ok := formShort(body); ok {
		return form, nil
	}
	return formFull(body, lim)
}

// formShort encodes the shape the caller sends, {"number":N} or
// {"number":"N"} with N an integer literal, without a JSON decoder. ok is
// false for any other body, which formFull then handles.
func formShort(body []byte) (form []byte, ok bool) {
	lit, ok := bytes.CutPrefix(body, []byte(shortPrefix))
	if !ok {
		return nil, false
	}
	lit, ok = bytes.CutSuffix(lit, []byte("}"))
	if !ok {
		return nil, false
	}
	if len(lit) >= 2 && lit[0] == '"' && lit[len(lit)-1] == '"' {
		lit = lit[1 : len(lit)-1]
	}
	if !isInteger(lit) {
		return nil, false
	}
	// Digits and '-' need no escaping.
	form = make([]byte, 0, len("number=")+len(lit))
	return append(append(form, "number="...), lit...), true
}

// isInteger reports whether b is a JSON integer literal,
// -?(0|[1-9][0-9]*), of at most 20 digits: enough for any int64, and the
// bound keeps the fast path within maxForm.
func isInteger(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("-"))
	if len(b) == 0 || len(b) > 20 || len(b) > 1 && b[0] == '0' {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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

// mismatch returns an error that wraps ErrFormMismatch with a reason.
func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormMismatch, fmt.Sprintf(format, args...))
}

// appendEscaped appends s escaped like PHP's urlencode: letters, digits and
// "-_." stay, a space becomes '+', every other byte becomes %XX in
// upper-case hex (so '~' becomes %7E, unlike in RFC 3986 escaping).
func appendEscaped[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
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
