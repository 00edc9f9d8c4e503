package phpform

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonSpace is the white space JSON allows between tokens.
const jsonSpace = " \t\r\n"

// formFull encodes any body, walking encoding/json's token stream.
func formFull(body []byte, lim Limits) ([]byte, error) {
	if len(bytes.TrimLeft(body, jsonSpace)) == 0 {
		return nil, malformed("empty body")
	}
	// encoding/json would replace both with U+FFFD without a word.
	if !utf8.Valid(body) {
		return nil, malformed("not valid UTF-8")
	}
	if off := unpairedSurrogate(body); off >= 0 {
		return nil, malformed("unpaired UTF-16 surrogate in a \\u escape at offset %d", off)
	}
	if lim.MaxInputVars <= 0 {
		lim.MaxInputVars = 1000
	}
	if lim.MaxNestingLevel <= 0 {
		lim.MaxNestingLevel = 64
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keeps each number's literal
	w := walker{lim: lim}
	for done := false; !done; {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err, dec.InputOffset())
		}
		if done, err = w.token(tok, dec.InputOffset()); err != nil {
			return nil, err
		}
	}
	// Token would read a second value as if it belonged, so look ourselves.
	off := int(dec.InputOffset())
	if rest := bytes.TrimLeft(body[off:], jsonSpace); len(rest) > 0 {
		return nil, malformed("trailing data after the JSON value at offset %d", len(body)-len(rest))
	}
	switch {
	case w.mismatch != nil:
		return nil, w.mismatch
	case w.fields > lim.MaxInputVars:
		return nil, mismatch("%d fields, more than max_input_vars (%d)", w.fields, lim.MaxInputVars)
	}
	return w.form, nil
}

// syntaxError returns the error for err from json.Decoder.Token, at the
// offset of the token that Token could not read.
func syntaxError(err error, off int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("invalid JSON: unexpected end of input")
	}
	return malformed("invalid JSON at offset %d: %v", off, err)
}

// walker builds the form from the tokens of one JSON object.
type walker struct {
	lim   Limits
	stack []frame // the objects and arrays entered and not yet left

	// name is the current member's field name as PHP decodes it,
	// k0[k1][k2]; escaped, it is the name in the form.
	name []byte
	// bad is the depth of the outermost member whose name PHP would
	// change, or 0.
	bad int

	form     []byte
	fields   int
	mismatch error // the first found; the walk goes on to find ErrMalformed
}

// frame is an object or array being walked.
type frame struct {
	array   bool
	n       int    // members or elements so far
	inValue bool   // an object member's name has been read, its value not yet
	mark    int    // len(walker.name) before the current member's name
	key     string // the current member's name
	// containers holds the names of the members seen whose last value was
	// an object or array.
	containers map[string]bool
}

// token handles one token and reports whether it closed the top object.
func (w *walker) token(tok json.Token, off int64) (done bool, err error) {
	if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
		return w.leave(), nil
	}
	if len(w.stack) == 0 {
		if tok != json.Delim('{') {
			return false, malformed("JSON %s, not an object", kind(tok))
		}
		w.stack = append(w.stack, frame{})
		return false, nil
	}
	top := &w.stack[len(w.stack)-1]
	if !top.array && !top.inValue {
		w.member(top, tok.(string)) // Token checked that a key is a string
		return false, nil
	}
	if top.array {
		top.mark = len(w.name)
		w.name = append(strconv.AppendInt(append(w.name, '['), int64(top.n), 10), ']')
		top.n++
	}
	d, container := tok.(json.Delim)
	switch {
	case top.array: // elements have no names to repeat
	case container && top.containers[top.key]:
		w.found(mismatch("field %s: repeated, and PHP would merge its values where json_decode keeps the last", quote(w.name)))
	case container:
		if top.containers == nil {
			top.containers = make(map[string]bool)
		}
		top.containers[top.key] = true
	default:
		delete(top.containers, top.key)
	}
	if container {
		if len(w.stack) == maxDepth {
			return false, malformed("nested deeper than %d levels at offset %d", maxDepth, off-1)
		}
		w.stack = append(w.stack, frame{array: d == '['})
		return false, nil
	}
	err = w.field(tok)
	w.endValue()
	return false, err
}

// member starts the member named key of the object top.
func (w *walker) member(top *frame, key string) {
	top.n++
	top.inValue = true
	top.key = key
	top.mark = len(w.name)
	if len(w.stack) == 1 {
		w.name = append(w.name, key...)
	} else {
		w.name = append(append(append(w.name, '['), key...), ']')
	}
	if w.bad == 0 && !(len(w.stack) == 1 && topNameKept(key) || len(w.stack) > 1 && indexKept(key)) {
		w.bad = len(w.stack)
	}
}

// endValue ends the current member or element of the innermost object or
// array.
func (w *walker) endValue() {
	top := &w.stack[len(w.stack)-1]
	w.name = w.name[:top.mark]
	top.inValue = false
	if w.bad == len(w.stack) {
		w.bad = 0
	}
}

// leave leaves the innermost object or array and reports whether it was the
// top object.
func (w *walker) leave() bool {
	left := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	if len(w.stack) == 0 {
		return true
	}
	if left.n == 0 {
		what := "an empty object"
		if left.array {
			what = "an empty array"
		}
		w.found(mismatch("field %s: %s, for which http_build_query writes no field", quote(w.name), what))
	}
	w.endValue()
	return false
}

// field appends the form field for the scalar tok, named w.name.
func (w *walker) field(tok json.Token) error {
	var v string
	switch t := tok.(type) {
	case nil:
		w.found(mismatch("field %s: null, for which http_build_query writes no field", quote(w.name)))
		return nil
	case bool:
		v = "0"
		if t {
			v = "1"
		}
	case json.Number:
		v = string(t)
	case string:
		v = t
	}
	w.fields++
	if w.bad > 0 {
		w.found(renamed(w.name))
	} else if levels := len(w.stack) - 1; levels > w.lim.MaxNestingLevel {
		w.found(mismatch("field %s: %d levels of brackets, more than max_input_nesting_level (%d)",
			quote(w.name), levels, w.lim.MaxNestingLevel))
	}
	if len(w.form) > 0 {
		w.form = append(w.form, '&')
	}
	w.form = appendEscaped(append(appendEscaped(w.form, w.name), '='), v)
	// Checking after the field overshoots the bound by at most one field,
	// whose size the body bounds.
	if len(w.form) > maxForm {
		return malformed("form body longer than %d bytes", maxForm)
	}
	return nil
}

// found keeps err if it is the first mismatch.
func (w *walker) found(err error) {
	if w.mismatch == nil {
		w.mismatch = err
	}
}

// kind names the JSON type of a value that starts with tok.
func kind(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	}
	return "array"
}

// unpairedSurrogate returns the offset of the first \u escape in body that
// holds half a UTF-16 surrogate pair without the other half, or -1. Every
// backslash in valid JSON starts an escape in a string, so the escapes can be
// found without tracking strings; in invalid JSON the decoder reports the
// error.
func unpairedSurrogate(body []byte) int {
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 {
			return -1
		}
		i += j
		r, ok := hex4(body, i)
		switch {
		case !ok:
			i += 2
		case utf16.IsSurrogate(r):
			r2, ok := hex4(body, i+6)
			if !ok || utf16.DecodeRune(r, r2) == utf8.RuneError {
				return i
			}
			i += 12
		default:
			i += 6
		}
	}
	return -1
}

// hex4 decodes the escape \uXXXX at body[i:].
func hex4(body []byte, i int) (rune, bool) {
	if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
	return rune(n), err == nil
}
