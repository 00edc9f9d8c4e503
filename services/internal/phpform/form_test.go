package phpform

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFormAccepted(t *testing.T) {
	// deep is a leaf under that many levels of arrays, deepForm its form.
	deep := func(levels int) string {
		return `{"x":` + strings.Repeat("[", levels) + "1" + strings.Repeat("]", levels) + "}"
	}
	deepForm := func(levels int) string { return "x" + strings.Repeat("%5B0%5D", levels) + "=1" }
	var fields []string
	for i := range 1000 {
		fields = append(fields, "a%5B"+strconv.Itoa(i)+"%5D=1")
	}
	tests := []struct {
		name string
		body string
		lim  Limits
		form string
	}{
		{"typical", `{"number":42}`, Limits{}, "number=42"},
		{"string as the PHP caller sent", `{"number":"42"}`, Limits{}, "number=42"},
		{"negative", `{"number":-7}`, Limits{}, "number=-7"},
		{"minus zero keeps its literal", `{"number":-0}`, Limits{}, "number=-0"},
		{"int64 min", `{"number":-9223372036854775808}`, Limits{}, "number=-9223372036854775808"},
		{"leading zeros in a string", `{"number":"007"}`, Limits{}, "number=007"},
		{"number not interpreted", `{"number":1.5e3}`, Limits{}, "number=1.5e3"},
		{"number as text", `{"number":"abc"}`, Limits{}, "number=abc"},
		{"no number", `{"a":"b"}`, Limits{}, "a=b"},
		{"empty object", `{}`, Limits{}, ""},
		{"white space", " {\n\t\"number\" : 42 ,\r\n \"a\" : [ 1 , 2 ] } \n", Limits{}, "number=42&a%5B0%5D=1&a%5B1%5D=2"},
		{"extra fields", `{"number":1,"name":"x","n":2.5}`, Limits{}, "number=1&name=x&n=2.5"},
		{"nested fields", `{"number":1,"a":{"b":[1,{"d":false,"e":true}]}}`, Limits{}, "number=1&a%5Bb%5D%5B0%5D=1&a%5Bb%5D%5B1%5D%5Bd%5D=0&a%5Bb%5D%5B1%5D%5Be%5D=1"},
		{"nested number is just a field", `{"x":{"number":5},"number":1}`, Limits{}, "x%5Bnumber%5D=5&number=1"},
		{"repeated scalar: PHP keeps the last", `{"number":1,"number":"2"}`, Limits{}, "number=1&number=2"},
		{"repeated: object then scalar", `{"a":{"b":1},"a":2}`, Limits{}, "a%5Bb%5D=1&a=2"},
		{"repeated: scalar then object", `{"a":1,"a":{"b":2}}`, Limits{}, "a=1&a%5Bb%5D=2"},
		{"repeated: object, scalar, object", `{"a":{"b":1},"a":2,"a":{"c":3}}`, Limits{}, "a%5Bb%5D=1&a=2&a%5Bc%5D=3"},
		{"escaped key", `{"\u006eumber":5}`, Limits{}, "number=5"},
		{"string escapes", `{"s":"a\"b\\c\/d\u00e9\ud83d\ude00\n\t"}`, Limits{}, "s=a%22b%5Cc%2Fd%C3%A9%F0%9F%98%80%0A%09"},
		{"raw UTF-8", `{"s":"é"}`, Limits{}, "s=%C3%A9"},
		{"NUL in a value", `{"s":"a\u0000b"}`, Limits{}, "s=a%00b"},
		{"empty string", `{"s":""}`, Limits{}, "s="},
		{"numbers keep their literal", `{"f":1.50e+3,"g":-0.0}`, Limits{}, "f=1.50e%2B3&g=-0.0"},
		{"big integer", `{"big":123456789012345678901234567890}`, Limits{}, "big=123456789012345678901234567890"},
		{"value escaping", `{"a":"x y~é","s":"-_.!*'()+&=/?#%"}`, Limits{}, "a=x+y%7E%C3%A9&s=-_.%21%2A%27%28%29%2B%26%3D%2F%3F%23%25"},
		{"nested key kept as it is", `{"k":{"a b.c[d~":1," x":2,"  ":3,"\t.":4}}`, Limits{}, "k%5Ba+b.c%5Bd%7E%5D=1&k%5B+x%5D=2&k%5B++%5D=3&k%5B%09.%5D=4"},
		{"top-level ']' is plain", `{"a]":1}`, Limits{}, "a%5D=1"},
		{"1000 fields", `{"a":[` + strings.Repeat("1,", 999) + `1]}`, Limits{}, strings.Join(fields, "&")},
		{"64 levels", deep(64), Limits{}, deepForm(64)},
		{"512 levels with a higher limit", deep(511), Limits{MaxNestingLevel: 600}, deepForm(511)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := Form([]byte(tt.body), tt.lim)
			if err != nil {
				t.Fatalf("Form(%.80s) error: %v", tt.body, err)
			}
			if got := string(form); got != tt.form {
				t.Errorf("Form(%.80s) = %.80q, want %.80q", tt.body, got, tt.form)
			}
		})
	}
}

func TestFormMalformed(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason string // a part of the error message
	}{
		{"empty body", ``, "empty body"},
		{"only white space", " \n", "empty body"},
		{"not JSON", `number=42`, "invalid JSON at offset 0"},
		{"array", `[]`, "JSON array, not an object"},
		{"string", `"42"`, "JSON string, not an object"},
		{"bare number", `42`, "JSON number, not an object"},
		{"boolean", `true`, "JSON boolean, not an object"},
		{"null", `null`, "JSON null, not an object"},
		{"trailing garbage", `{"number":1}x`, "trailing data after the JSON value at offset 12"},
		{"two objects", `{"number":1} {"number":2}`, "trailing data after the JSON value at offset 13"},
		{"unterminated object", `{"number":1`, "unexpected end of input"},
		{"unterminated string", `{"number":1,"s":"abc`, "unexpected end of input"},
		{"leading zero", `{"number":01}`, "invalid JSON"},
		{"trailing comma", `{"number":1,}`, "invalid JSON"},
		{"trailing comma in array", `{"a":[1,]}`, "invalid JSON"},
		{"unquoted key", `{number:1}`, "invalid JSON at offset 1"},
		{"single quotes", `{'number':1}`, "invalid JSON"},
		{"missing colon", `{"number" 1}`, "invalid JSON at offset 10"},
		{"bad literal", `{"x":tru}`, "invalid JSON"},
		{"bare minus", `{"number":-}`, "invalid JSON"},
		{"dot without digits", `{"number":1.}`, "invalid JSON"},
		{"exponent without digits", `{"number":1e}`, "invalid JSON"},
		{"bad escape", `{"s":"\x"}`, "invalid JSON"},
		{"short unicode escape", `{"s":"\u12"}`, "invalid JSON"},
		{"lone high surrogate", `{"s":"\ud800"}`, "unpaired UTF-16 surrogate in a \\u escape at offset 6"},
		{"lone low surrogate", `{"s":"\udc00x"}`, "unpaired UTF-16 surrogate"},
		{"surrogate and non-surrogate", `{"s":"\ud800\u0041"}`, "unpaired UTF-16 surrogate"},
		{"two high surrogates", `{"s":"\ud83d\ud83d"}`, "unpaired UTF-16 surrogate"},
		{"surrogate in a key", `{"\udfff":1}`, "unpaired UTF-16 surrogate"},
		{"raw control character", "{\"s\":\"a\tb\"}", "invalid JSON"},
		{"invalid UTF-8", "{\"s\":\"\xff\"}", "not valid UTF-8"},
		{"byte order mark", "\ufeff{\"number\":1}", "invalid JSON at offset 0"},
		{"NUL byte", "{\"number\":1\x00}", "invalid JSON"},
		{"513 levels deep", `{"x":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`, "nested deeper than 512 levels at offset 516"},
		// A malformed body is not a job, whatever else is wrong with it.
		{"mismatch and trailing data", `{"a.b":null}x`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := Form([]byte(tt.body), Limits{})
			if err == nil {
				t.Fatalf("Form(%q) = %q, want an error", tt.body, form)
			}
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrFormMismatch) {
				t.Errorf("Form(%q) error %v does not wrap just ErrMalformed", tt.body, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Form(%q) error %q does not contain %q", tt.body, err, tt.reason)
			}
		})
	}
}

func TestFormMismatch(t *testing.T) {
	nest := func(levels int) string { // a leaf under that many levels of brackets
		return `{"a":` + strings.Repeat(`{"b":`, levels) + "1" + strings.Repeat("}", levels+1)
	}
	tests := []struct {
		name   string
		body   string
		lim    Limits
		reason string // a part of the error message
	}{
		{"dot", `{"user.email":"a@b"}`, Limits{}, `field "user.email": PHP would rename it to "user_email"`},
		{"space", `{"first name":"Ann"}`, Limits{}, `field "first name": PHP would rename it to "first_name"`},
		{"leading spaces", `{"  lead":1}`, Limits{}, `field "  lead": PHP would rename it to "lead"`},
		{"unmatched bracket", `{"tags[":1}`, Limits{}, `field "tags[": PHP would rename it to "tags_"`},
		{"unmatched bracket, then more", `{"a[b.c d":1}`, Limits{}, `PHP would rename it to "a_b_c_d"`},
		{"bracket before nested fields", `{"tags[":{"x":1}}`, Limits{}, `field "tags[[x]": PHP would read it as $_POST["tags"]["[x"]`},
		{"index in the name", `{"a[b]":1}`, Limits{}, `field "a[b]": PHP would read it as $_POST["a"]["b"]`},
		{"empty name", `{"":"v"}`, Limits{}, `field "": PHP would drop it`},
		{"only spaces", `{"  ":"v"}`, Limits{}, `field "  ": PHP would drop it`},
		{"name starts with a bracket", `{"[a]":"v"}`, Limits{}, `field "[a]": PHP would drop it`},
		{"number[] collides with number", `{"number":11,"number[]":7}`, Limits{}, `field "number[]": PHP would read it as $_POST["number"][]`},
		{"NUL cuts the name", `{"ab\u0000c":1}`, Limits{}, `field "ab\x00c": PHP would rename it to "ab"`},
		{"NUL in a nested name", `{"x":{"a\u0000":1}}`, Limits{}, `field "x[a\x00]": PHP would rename it to "x_a"`},
		{"']' in a nested name", `{"x":{"a]b":1}}`, Limits{}, `field "x[a]b]": PHP would read it as $_POST["x"]["a"]`},
		{"empty nested name", `{"x":{"":1}}`, Limits{}, `field "x[]": PHP would read it as $_POST["x"][]`},
		{"blank nested name", `{"x":{"\n":1}}`, Limits{}, `field "x[\n]": PHP would read it as $_POST["x"][]`},
		{"first mismatch wins", `{"a.b":1,"c d":2}`, Limits{}, `field "a.b"`},
		{"null", `{"number":1,"z":null}`, Limits{}, `field "z": null, for which http_build_query writes no field`},
		{"empty array", `{"e":[]}`, Limits{}, `field "e": an empty array, for which http_build_query writes no field`},
		{"empty object", `{"x":[{}]}`, Limits{}, `field "x[0]": an empty object, for which http_build_query writes no field`},
		{"repeated objects merge", `{"a":{"b":1},"a":{"c":2}}`, Limits{}, `field "a": repeated, and PHP would merge its values`},
		{"repeated arrays merge", `{"x":{"a":[1,2],"a":[3]}}`, Limits{}, `field "x[a]": repeated`},
		{"1200 fields", `{"a":[` + strings.Repeat("1,", 1199) + `1]}`, Limits{}, "1200 fields, more than max_input_vars (1000)"},
		{"fields over a set limit", `{"a":1,"b":2,"c":3}`, Limits{MaxInputVars: 2}, "3 fields, more than max_input_vars (2)"},
		{"65 levels", nest(65), Limits{}, `65 levels of brackets, more than max_input_nesting_level (64)`},
		{"levels over a set limit", nest(3), Limits{MaxNestingLevel: 2}, `field "a[b][b][b]": 3 levels of brackets, more than max_input_nesting_level (2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := Form([]byte(tt.body), tt.lim)
			if err == nil {
				t.Fatalf("Form(%.80q) = %.80q, want an error", tt.body, form)
			}
			if !errors.Is(err, ErrFormMismatch) || errors.Is(err, ErrMalformed) {
				t.Errorf("Form(%.80q) error %v does not wrap just ErrFormMismatch", tt.body, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Form(%.80q) error %q does not contain %q", tt.body, err, tt.reason)
			}
		})
	}
}

// TestPHPPath checks the model of PHP's form parser against what
// php-src main/php_variables.c does with some names.
func TestPHPPath(t *testing.T) {
	tests := []struct {
		name string
		want []string // nil: dropped; "": a new element
	}{
		{"a", []string{"a"}},
		{"a b.c", []string{"a_b_c"}},
		{"  a ", []string{"a_"}},
		{"a[b][c]", []string{"a", "b", "c"}},
		{"a[b.c d]", []string{"a", "b.c d"}},
		{"a[]", []string{"a", ""}},
		{"a[ ]", []string{"a", ""}},
		{"a[\v]", []string{"a", ""}},
		{"a[  ]", []string{"a", "  "}},
		{"a[ b]", []string{"a", " b"}},
		{"a[[b]", []string{"a", "[b"}},
		{"a[b]c[d]", []string{"a", "b"}},
		{"a[b][c", []string{"a", "b"}},
		{"a.b[c", []string{"a_b_c"}},
		{"a[b c.d[e", []string{"a_b_c_d_e"}},
		{"a\x00[b]", []string{"a"}},
		{"a[b\x00]", []string{"a_b"}},
		{"a]b", []string{"a]b"}},
		{"", nil},
		{"  ", nil},
		{"[a]", nil},
		{"\x00a", nil},
	}
	for _, tt := range tests {
		if got := phpPath(tt.name); !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("phpPath(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestNameRulesAgreeWithPHPPath checks that the rules Form applies to each
// key accept a name exactly when the step-by-step model keeps it.
func TestNameRulesAgreeWithPHPPath(t *testing.T) {
	keys := []string{"", "a", "a b", " a", "a.", ".", "[", "]", "a[", "a]", "[a]", "a[b]",
		"a]b[", " ", "\t", "\v", "  ", " ]", "\x00", "a\x00", "é", "-_~"}
	for _, k0 := range keys {
		for _, k1 := range append(keys, "none") {
			for _, k2 := range append(keys, "none") {
				path := []string{k0}
				if k1 != "none" {
					path = append(path, k1)
					if k2 != "none" {
						path = append(path, k2)
					}
				}
				name := path[0]
				kept := topNameKept(path[0])
				for _, k := range path[1:] {
					name += "[" + k + "]"
					kept = kept && indexKept(k)
				}
				// In phpPath, "" below the top means a new element.
				model := phpPath(name)
				if kept != (slices.Equal(model, path) && !slices.Contains(model[1:], "")) {
					t.Errorf("name %q: rules say kept=%v, phpPath = %q", name, kept, model)
				}
			}
		}
	}
}

// TestShortPathAgrees checks that the fast path gives what the decoder
// gives, for bodies on both sides of its boundary.
func TestShortPathAgrees(t *testing.T) {
	bodies := []string{
		`{"number":42}`, `{"number":"42"}`, `{"number":-1}`, `{"number":0}`,
		`{"number":-0}`, `{"number":"-0"}`, `{"number":"007"}`, `{"number":007}`,
		`{"number":9223372036854775807}`, `{"number":-9223372036854775808}`,
		`{"number":99999999999999999999}`, `{"number":999999999999999999999}`,
		`{"number":"-"}`, `{"number":""}`, `{"number":"}`, `{"number":"1}`, `{"number":1"}`,
		`{"number":1.0}`, `{"number":1e3}`, `{"number":-}`, `{"number": 1}`, `{"number":1 }`,
	}
	for _, body := range bodies {
		full, fullErr := formFull([]byte(body), Limits{})
		form, err := Form([]byte(body), Limits{})
		if !bytes.Equal(form, full) || (err == nil) != (fullErr == nil) {
			t.Errorf("Form(%s) = %q, %v; formFull gives %q, %v", body, form, err, full, fullErr)
		}
	}
	for _, n := range []int64{0, 42, -7, math.MaxInt64, math.MinInt64} {
		for _, body := range [][]byte{Marshal(n), []byte(`{"number":"` + strconv.FormatInt(n, 10) + `"}`)} {
			if _, ok := formShort(body); !ok {
				t.Errorf("Form(%s) does not take the fast path", body)
			}
		}
	}
}

func TestFormTypicalAllocatesOnce(t *testing.T) {
	body := Marshal(42)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Form(body, Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("Form(%s) allocates %v times, want 1: the result", body, allocs)
	}
}

func TestFormDoesNotRetainBody(t *testing.T) {
	for _, s := range []string{`{"number":1}`, `{"number":1,"a":"bcd"}`} {
		body := []byte(s)
		form, err := Form(body, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		want := string(form)
		copy(body, bytes.Repeat([]byte{'x'}, len(body)))
		if string(form) != want {
			t.Errorf("Form(%s) changed with the body to %q", s, form)
		}
	}
}

func TestFormBoundsTheForm(t *testing.T) {
	// 511 levels of nesting make every leaf's name about 3.5 kB long, so a
	// body of a few kilobytes per thousand leaves would need megabytes.
	deep := strings.Repeat("[", 510) + "[" + strings.Repeat("1,", 3000) + "1]" + strings.Repeat("]", 510)
	_, err := Form([]byte(`{"x":`+deep+`}`), Limits{})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "form body longer than 8388608 bytes") {
		t.Errorf("Form of a deeply nested message with many leaves: error %v, want a form body bound", err)
	}
	// A long value that fits is fine.
	long := strings.Repeat("a", 4<<20)
	form, err := Form([]byte(`{"s":"`+long+`"}`), Limits{})
	if err != nil || len(form) != len("s=")+len(long) {
		t.Errorf("Form of a 4 MiB string: %d bytes of form, %v", len(form), err)
	}
}

func TestMarshal(t *testing.T) {
	for _, n := range []int64{0, 42, -7, math.MaxInt64, math.MinInt64} {
		want := `{"number":` + strconv.FormatInt(n, 10) + `}`
		if got := string(Marshal(n)); got != want {
			t.Errorf("Marshal(%d) = %s, want %s", n, got, want)
		}
		form, err := Form(Marshal(n), Limits{})
		if want := "number=" + strconv.FormatInt(n, 10); err != nil || string(form) != want {
			t.Errorf("Form(Marshal(%d)) = %q, %v; want %q", n, form, err, want)
		}
	}
	if got, want := string(AppendJSON([]byte("x"), 5)), `x{"number":5}`; got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
}

// FuzzDecode checks that the $_POST that PHP would build from Form's body
// is what json_decode gives, and that Form rejects nothing else than
// malformed JSON or a mismatch.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"number":42}`, `{"number":"42"}`, `{"number":-0}`, `{"number":9223372036854775808}`,
		`{"a":"x y~é","number":1}`, `{"number":1,"flag":true,"list":[1,"b"],"obj":{"k":"v"}}`,
		`{"number":1,"n":null}`, `{"e":[],"o":{}}`, `{"number":1,"number":"2"}`,
		`{"a":{"b":1},"a":2,"a":{"c":3}}`, `{"a":{"b":1},"a":{"c":2}}`,
		`{"\u006eumber":5}`, `{"s":"\ud83d\ude00"}`, `{"s":"\ud800"}`,
		`{"a.b":1}`, `{" a":1}`, `{"a[":1}`, `{"a[b]":1}`, `{"":1}`, `{"x":{"":1," ":2,"a]":3,"[":4}}`,
		`{"x":{"a]":1}}`, `{"x":{"a\u0000":1}}`, `{"x":{" ":1}}`, `{"x":{"":1}}`,
		`{"a\u0000":1}`, `{"a":[[[[1]]]]}`, `{"a":[1,2,3,4]}`,
		`[]`, `"42"`, ``, `{"number":1}x`, `{"number":01}`, " {\n\"number\" : 1 } ",
		"{\"number\":1,\"s\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := Form(body, Limits{})
		switch {
		case errors.Is(err, ErrFormMismatch):
			if !json.Valid(body) {
				t.Fatalf("Form(%q) calls invalid JSON a mismatch: %v", body, err)
			}
			return
		case errors.Is(err, ErrMalformed):
			// Form is stricter than encoding/json (surrogates, depth) but
			// must not call valid JSON a syntax error.
			if json.Valid(body) && strings.Contains(err.Error(), "invalid JSON") {
				t.Fatalf("Form(%q) calls valid JSON invalid: %v", body, err)
			}
			return
		case err != nil:
			t.Fatalf("Form(%q) error %v wraps neither sentinel", body, err)
		}
		// encoding/json takes invalid UTF-8 and unpaired surrogates, and
		// turns them into U+FFFD; Form must not.
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("Form(%q) accepted invalid JSON", body)
		}
		if n := replacements(body); n > 0 {
			t.Fatalf("Form(%q) accepted a body that decodes with %d U+FFFD too many", body, n)
		}
		// PHP's urlencode leaves only these bytes as they are.
		if i := bytes.IndexFunc(form, func(r rune) bool {
			return !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+%=&", r)
		}); i >= 0 {
			t.Fatalf("Form(%q) = %q has %q", body, form, form[i])
		}
		if _, err := url.ParseQuery(string(form)); err != nil {
			t.Fatalf("Form(%q) = %q does not parse: %v", body, form, err)
		}
		post, fields, levels := phpPost(t, form)
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("encoding/json rejects %q, which Form accepted: %v", body, err)
		}
		if want := asPOST(v); !reflect.DeepEqual(post, want) {
			t.Fatalf("Form(%q) = %q: PHP would see\n%#v\njson_decode gives\n%#v", body, form, post, want)
		}
		if fields > 1000 || levels > 64 {
			t.Fatalf("Form(%q) accepted %d fields, %d levels", body, fields, levels)
		}

		if full, err := formFull(body, Limits{}); err != nil || !bytes.Equal(full, form) {
			t.Fatalf("formFull(%q) = %q, %v; Form gave %q", body, full, err, form)
		}
		// Tighter limits reject exactly the forms beyond them.
		tight := Limits{MaxInputVars: 3, MaxNestingLevel: 1}
		within := fields <= tight.MaxInputVars && levels <= tight.MaxNestingLevel
		if got, err := Form(body, tight); within != (err == nil) || err == nil && !bytes.Equal(got, form) ||
			err != nil && !errors.Is(err, ErrFormMismatch) {
			t.Fatalf("Form(%q, %+v) = %q, %v; with default limits %q", body, tight, got, err, form)
		}
	})
}

// replacements returns how many more U+FFFD the strings in body decode to
// than body writes, raw or as the escape \ufffd.
func replacements(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	decoded := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			decoded += strings.Count(s, "\ufffd")
		}
	}
	written := bytes.Count(body, []byte("\ufffd")) + bytes.Count(bytes.ToLower(body), []byte(`\ufffd`))
	return decoded - written
}

// phpPost returns the $_POST that PHP's form parser would build from form,
// as phpPath models it, with all values strings and all arrays maps, and
// the number of fields and the most levels of brackets in a name.
func phpPost(t *testing.T, form []byte) (post map[string]any, fields, levels int) {
	t.Helper()
	post = map[string]any{}
	if len(form) == 0 {
		return post, 0, 0
	}
	for pair := range strings.SplitSeq(string(form), "&") {
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			t.Fatalf("form %q: field name %q: %v", form, k, err)
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			t.Fatalf("form %q: value %q: %v", form, v, err)
		}
		path := phpPath(name)
		if len(path) == 0 || slices.Contains(path[1:], "") {
			t.Fatalf("form %q: PHP would drop or append field %q", form, name)
		}
		fields++
		levels = max(levels, len(path)-1)
		m := post
		for _, key := range path[:len(path)-1] {
			sub, ok := m[key].(map[string]any)
			if !ok { // PHP replaces a string with an array
				sub = map[string]any{}
				m[key] = sub
			}
			m = sub
		}
		m[path[len(path)-1]] = value
	}
	return post, fields, levels
}

// asPOST returns a value decoded by encoding/json the way phpPost
// represents it: strings for scalars as http_build_query writes them, maps
// for arrays.
func asPOST(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = asPOST(e)
		}
		return m
	case []any:
		m := make(map[string]any, len(v))
		for i, e := range v {
			m[strconv.Itoa(i)] = asPOST(e)
		}
		return m
	case json.Number:
		return string(v)
	case bool:
		if v {
			return "1"
		}
		return "0"
	}
	return v // a string, or nil, which no field gives
}

// BenchmarkForm measures the caller's message, the hot path.
func BenchmarkForm(b *testing.B) {
	body := Marshal(42)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Form(body, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormFields measures a message with more fields than "number",
// which takes the decoder.
func BenchmarkFormFields(b *testing.B) {
	body := []byte(`{"number":42,"name":"x y","tags":["a","b"],"opts":{"force":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Form(body, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
