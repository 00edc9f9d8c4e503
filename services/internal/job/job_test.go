package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		number int64
		form   string
	}{
		{"typical", `{"number":42}`, 42, "number=42"},
		{"string as the PHP caller sent", `{"number":"42"}`, 42, "number=42"},
		{"negative", `{"number":-7}`, -7, "number=-7"},
		{"negative string", `{"number":"-7"}`, -7, "number=-7"},
		{"zero", `{"number":0}`, 0, "number=0"},
		{"minus zero keeps its literal", `{"number":-0}`, 0, "number=-0"},
		{"int64 max", `{"number":9223372036854775807}`, math.MaxInt64, "number=9223372036854775807"},
		{"int64 min", `{"number":-9223372036854775808}`, math.MinInt64, "number=-9223372036854775808"},
		{"int64 min string", `{"number":"-9223372036854775808"}`, math.MinInt64, "number=-9223372036854775808"},
		{"string with leading zeros keeps its value", `{"number":"007"}`, 7, "number=007"},
		{"white space", " {\n\t\"number\" : 42 ,\r\n \"a\" : [ 1 , 2 ] } \n", 42, "number=42&a%5B0%5D=1&a%5B1%5D=2"},
		{"extra fields", `{"number":1,"name":"x","n":2.5}`, 1, "number=1&name=x&n=2.5"},
		{"fields before number", `{"a":"b","number":3}`, 3, "a=b&number=3"},
		{"nested fields", `{"number":1,"a":{"b":[1,{"c":null,"d":false}]}}`, 1, "number=1&a%5Bb%5D%5B0%5D=1&a%5Bb%5D%5B1%5D%5Bd%5D=0"},
		{"nested number does not count", `{"x":{"number":5},"number":1}`, 1, "x%5Bnumber%5D=5&number=1"},
		{"duplicate: last wins", `{"number":1,"number":"2"}`, 2, "number=1&number=2"},
		{"duplicate: a bad first one is overridden", `{"number":"x","number":3}`, 3, "number=x&number=3"},
		{"escaped key", `{"\u006eumber":5}`, 5, "number=5"},
		{"string escapes", `{"number":1,"s":"a\"b\\c\/d\u00e9\ud83d\ude00\n\t"}`, 1, "number=1&s=a%22b%5Cc%2Fd%C3%A9%F0%9F%98%80%0A%09"},
		{"raw UTF-8", `{"number":1,"s":"é"}`, 1, "number=1&s=%C3%A9"},
		{"empty containers and nulls are left out", `{"number":1,"e":[],"o":{},"z":null}`, 1, "number=1"},
		{"numbers keep their literal", `{"number":1,"f":1.50e+3,"g":-0.0}`, 1, "number=1&f=1.50e%2B3&g=-0.0"},
		{"big integer in another field", `{"number":1,"big":123456789012345678901234567890}`, 1, "number=1&big=123456789012345678901234567890"},
		{"key escaping", `{"a b[c]~":1,"number":2}`, 2, "a+b%5Bc%5D%7E=1&number=2"},
		{"empty key", `{"":"v","number":2}`, 2, "=v&number=2"},
		{"512 levels deep", `{"number":1,"x":` + strings.Repeat("[", 511) + strings.Repeat("]", 511) + `}`, 1, "number=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode(%s) error: %v", tt.body, err)
			}
			if j.Number != tt.number {
				t.Errorf("Decode(%s).Number = %d, want %d", tt.body, j.Number, tt.number)
			}
			if got := string(j.Form()); got != tt.form {
				t.Errorf("Decode(%s).Form() = %q, want %q", tt.body, got, tt.form)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
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
		{"null", `null`, "JSON null, not an object"},
		{"fraction", `{"number":1.5}`, `"number" is not an integer: 1.5`},
		{"exponent", `{"number":1e3}`, `"number" is not an integer: 1e3`},
		{"integral fraction", `{"number":42.0}`, `"number" is not an integer: 42.0`},
		{"string not a number", `{"number":"abc"}`, `"number" is a string that is not an integer: "abc"`},
		{"string with fraction", `{"number":"1.5"}`, `not an integer: "1.5"`},
		{"string with plus", `{"number":"+5"}`, `not an integer: "+5"`},
		{"string with space", `{"number":" 5"}`, `not an integer: " 5"`},
		{"empty string", `{"number":""}`, `not an integer: ""`},
		{"only a minus", `{"number":"-"}`, `not an integer: "-"`},
		{"null number", `{"number":null}`, `"number" is null`},
		{"boolean number", `{"number":true}`, `"number" is a boolean, not an integer`},
		{"array number", `{"number":[1]}`, `"number" is an array, not an integer`},
		{"object number", `{"number":{}}`, `"number" is an object, not an integer`},
		{"missing", `{"numbers":1}`, `no "number" field`},
		{"empty object", `{}`, `no "number" field`},
		{"above int64", `{"number":9223372036854775808}`, `"number" is out of the int64 range: 9223372036854775808`},
		{"below int64", `{"number":-9223372036854775809}`, "out of the int64 range"},
		{"string above int64", `{"number":"9223372036854775808"}`, "out of the int64 range"},
		{"long string", `{"number":"` + strings.Repeat("9", 100) + `x"}`, "not an integer"},
		{"last duplicate is bad", `{"number":1,"number":"x"}`, `not an integer: "x"`},
		{"trailing garbage", `{"number":1}x`, "trailing data after the JSON value at offset 12"},
		{"two objects", `{"number":1} {"number":2}`, "trailing data"},
		{"unterminated object", `{"number":1`, "unexpected end of input"},
		{"unterminated string", `{"number":1,"s":"abc`, "unexpected end of input"},
		{"leading zero", `{"number":01}`, "invalid JSON"},
		{"trailing comma", `{"number":1,}`, "invalid JSON"},
		{"trailing comma in array", `{"number":1,"a":[1,]}`, "invalid JSON"},
		{"unquoted key", `{number:1}`, "expected a string key"},
		{"single quotes", `{'number':1}`, "invalid JSON"},
		{"missing colon", `{"number" 1}`, "expected ':'"},
		{"bad literal", `{"number":1,"x":tru}`, "invalid literal"},
		{"bare minus", `{"number":-}`, "expected a digit"},
		{"dot without digits", `{"number":1.}`, "expected a digit after '.'"},
		{"exponent without digits", `{"number":1e}`, "expected a digit in the exponent"},
		{"bad escape", `{"number":1,"s":"\x"}`, "invalid escape"},
		{"short unicode escape", `{"number":1,"s":"\u12"}`, "invalid \\u escape"},
		{"lone high surrogate", `{"number":1,"s":"\ud800"}`, "unpaired UTF-16 surrogate"},
		{"lone low surrogate", `{"number":1,"s":"\udc00x"}`, "unpaired UTF-16 surrogate"},
		{"surrogate and non-surrogate", `{"number":1,"s":"\ud800\u0041"}`, "unpaired UTF-16 surrogate"},
		{"raw control character", "{\"number\":1,\"s\":\"a\tb\"}", "control character"},
		{"invalid UTF-8", "{\"number\":1,\"s\":\"\xff\"}", "not valid UTF-8"},
		{"byte order mark", "\ufeff{\"number\":1}", "invalid JSON at offset 0"},
		{"NUL byte", "{\"number\":1\x00}", "invalid JSON"},
		{"513 levels deep", `{"number":1,"x":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`, "nested deeper than 512 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want an error", tt.body, j)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%q) error %v does not wrap ErrMalformed", tt.body, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Decode(%q) error %q does not contain %q", tt.body, err, tt.reason)
			}
		})
	}
}

func TestForm(t *testing.T) {
	tests := []struct {
		body string
		form string
	}{
		{`{"number":42}`, "number=42"},
		{`{"a":"x y~é","number":1}`, "a=x+y%7E%C3%A9&number=1"},
		{`{"number":1,"flag":true,"n":null,"list":[1,"b"],"obj":{"k":"v"}}`, "number=1&flag=1&list%5B0%5D=1&list%5B1%5D=b&obj%5Bk%5D=v"},
		{`{"number":1,"off":false}`, "number=1&off=0"},
		{`{"number":1,"s":"-_.!*'()+&=/?#%"}`, "number=1&s=-_.%21%2A%27%28%29%2B%26%3D%2F%3F%23%25"},
		{`{"number":1,"m":[[1,2],{"a":[true]}]}`, "number=1&m%5B0%5D%5B0%5D=1&m%5B0%5D%5B1%5D=2&m%5B1%5D%5Ba%5D%5B0%5D=1"},
		{`{"number":1,"k":{"x y":"1 2"}}`, "number=1&k%5Bx+y%5D=1+2"},
	}
	for _, tt := range tests {
		j, err := Decode([]byte(tt.body))
		if err != nil {
			t.Fatalf("Decode(%s) error: %v", tt.body, err)
		}
		if got := string(j.Form()); got != tt.form {
			t.Errorf("Decode(%s).Form() = %q, want %q", tt.body, got, tt.form)
		}
	}
}

func TestFormReturnsFreshSlice(t *testing.T) {
	for _, body := range []string{`{"number":42}`, `{"number":42,"a":"b"}`} {
		j, err := Decode([]byte(body))
		if err != nil {
			t.Fatalf("Decode(%s) error: %v", body, err)
		}
		f := j.Form()
		want := string(f)
		f[0] = 'X'
		if got := string(j.Form()); got != want {
			t.Errorf("after changing a returned slice, Decode(%s).Form() = %q, want %q", body, got, want)
		}
	}
}

func TestZeroJobForm(t *testing.T) {
	if got := string(Job{}.Form()); got != "number=0" {
		t.Errorf("Job{}.Form() = %q, want %q", got, "number=0")
	}
}

func TestDecodeDoesNotRetainBody(t *testing.T) {
	body := []byte(`{"number":1,"a":"bcd"}`)
	j, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	copy(body, bytes.Repeat([]byte{'x'}, len(body)))
	if got, want := string(j.Form()), "number=1&a=bcd"; got != want {
		t.Errorf("Form() after the body changed = %q, want %q", got, want)
	}
}

// TestShortPathAgrees checks that the fast path gives what the full decoder
// gives, for bodies on both sides of its boundary.
func TestShortPathAgrees(t *testing.T) {
	bodies := []string{
		`{"number":42}`, `{"number":"42"}`, `{"number":-1}`, `{"number":0}`,
		`{"number":-0}`, `{"number":"-0"}`, `{"number":"007"}`, `{"number":9223372036854775807}`,
		`{"number":-9223372036854775808}`, `{"number":"-9223372036854775808"}`,
	}
	for _, body := range bodies {
		full, err := decodeFull([]byte(body))
		if err != nil {
			t.Fatalf("decodeFull(%s) error: %v", body, err)
		}
		short, err := Decode([]byte(body))
		if err != nil {
			t.Fatalf("Decode(%s) error: %v", body, err)
		}
		if short.Number != full.Number || string(short.Form()) != string(full.Form()) {
			t.Errorf("Decode(%s) = %d %q, decodeFull = %d %q", body, short.Number, short.Form(), full.Number, full.Form())
		}
	}
	// The common shape must take the fast path.
	if _, ok := decodeShort([]byte(`{"number":42}`)); !ok {
		t.Error(`decodeShort({"number":42}) did not take the fast path`)
	}
	if _, ok := decodeShort([]byte(`{"number":-0}`)); ok {
		t.Error(`decodeShort({"number":-0}) took the fast path, which would lose the literal -0`)
	}
}

func TestDecodeTypicalDoesNotAllocate(t *testing.T) {
	body := Marshal(42)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decode(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode(%s) allocates %v times, want 0", body, allocs)
	}
}

func TestMarshal(t *testing.T) {
	for _, n := range []int64{0, 42, -7, math.MaxInt64, math.MinInt64} {
		want := `{"number":` + strconv.FormatInt(n, 10) + `}`
		if got := string(Marshal(n)); got != want {
			t.Errorf("Marshal(%d) = %s, want %s", n, got, want)
		}
		j, err := Decode(Marshal(n))
		if err != nil || j.Number != n {
			t.Errorf("Decode(Marshal(%d)) = %d, %v", n, j.Number, err)
		}
	}
	if got, want := string(AppendJSON([]byte("x"), 5)), `x{"number":5}`; got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"0", 0, nil},
		{"-0", 0, nil},
		{"123", 123, nil},
		{"9223372036854775807", math.MaxInt64, nil},
		{"-9223372036854775808", math.MinInt64, nil},
		{"9223372036854775808", 0, errRange},
		{"-9223372036854775809", 0, errRange},
		{"18446744073709551616", 0, errRange},
		{"99999999999999999999x", 0, errNotInteger},
		{"", 0, errNotInteger},
		{"-", 0, errNotInteger},
		{"+1", 0, errNotInteger},
		{"1-", 0, errNotInteger},
		{"--1", 0, errNotInteger},
	}
	for _, tt := range tests {
		got, err := parseInt([]byte(tt.in))
		if got != tt.want || err != tt.err {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"number":42}`, `{"number":"42"}`, `{"number":-7}`, `{"number":-0}`,
		`{"number":9223372036854775807}`, `{"number":9223372036854775808}`,
		`{"a":"x y~é","number":1}`,
		`{"number":1,"flag":true,"n":null,"list":[1,"b"],"obj":{"k":"v"}}`,
		`{"number":1.5}`, `{"number":1e3}`, `{"number":"abc"}`, `{"number":null}`,
		`{"number":1,"number":"2"}`, `{"\u006eumber":5}`, `{"number":1,"s":"\ud83d\ude00"}`,
		`{"number":1,"s":"\ud800"}`, `[]`, `"42"`, ``, `{"number":1}x`, `{"number":01}`,
		" {\n\"number\" : 1 } ", "{\"number\":1,\"s\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%q) error %v does not wrap ErrMalformed", body, err)
			}
			// Decode may be stricter than encoding/json (surrogates, depth)
			// but must not call valid JSON a syntax error.
			if json.Valid(body) && strings.Contains(err.Error(), "invalid JSON") {
				t.Fatalf("Decode(%q) calls valid JSON invalid: %v", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("Decode(%q) accepted invalid JSON", body)
		}
		checkNumberAgainstEncodingJSON(t, body, j.Number)

		form := j.Form()
		if !bytes.HasPrefix(form, []byte("number=")) && !bytes.Contains(form, []byte("&number=")) {
			t.Fatalf("Decode(%q).Form() = %q has no number field", body, form)
		}
		for _, c := range form {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+%=&", rune(c)) {
				t.Fatalf("Decode(%q).Form() = %q contains %q", body, form, c)
			}
		}
		// What PHP's form parser would see as $_POST['number'] is the last
		// number field, and it must agree with Number.
		q, err := url.ParseQuery(string(form))
		if err != nil {
			t.Fatalf("Decode(%q).Form() = %q does not parse: %v", body, form, err)
		}
		nums := q["number"]
		if n, err := parseInt([]byte(nums[len(nums)-1])); err != nil || n != j.Number {
			t.Fatalf("Decode(%q).Form() = %q: last number field gives %d, %v; Number is %d", body, form, n, err, j.Number)
		}

		full, err := decodeFull(body)
		if err != nil || full.Number != j.Number || !bytes.Equal(full.Form(), form) {
			t.Fatalf("decodeFull(%q) = %d %q, %v; Decode gave %d %q", body, full.Number, full.Form(), err, j.Number, form)
		}
		again, err := Decode(Marshal(j.Number))
		if err != nil || again.Number != j.Number {
			t.Fatalf("Decode(Marshal(%d)) = %d, %v", j.Number, again.Number, err)
		}
	})
}

// checkNumberAgainstEncodingJSON checks number against the "number" member
// as encoding/json sees it (a map keeps the last of duplicate keys too).
func checkNumberAgainstEncodingJSON(t *testing.T, body []byte, number int64) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatalf("encoding/json rejects %q, which Decode accepted: %v", body, err)
	}
	raw := obj["number"]
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		raw = []byte(s)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n != number {
		t.Fatalf("encoding/json sees number %s in %q, Decode gave %d", raw, body, number)
	}
}

func BenchmarkDecode(b *testing.B) {
	body := Marshal(42)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeFields measures the full decoder, which a message with any
// field besides "number" takes.
func BenchmarkDecodeFields(b *testing.B) {
	body := []byte(`{"number":42,"name":"x y","tags":["a","b"],"opts":{"force":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkForm(b *testing.B) {
	j, err := Decode(Marshal(42))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(j.Form()) == 0 {
			b.Fatal("empty form")
		}
	}
}

func TestDecodeBoundsTheForm(t *testing.T) {
	// 511 levels of nesting make every leaf's name about 3.5 kB long, so a
	// body of a few kilobytes per thousand leaves would need megabytes.
	deep := strings.Repeat("[", 510) + "[" + strings.Repeat("1,", 3000) + "1]" + strings.Repeat("]", 510)
	_, err := Decode([]byte(`{"number":1,"x":` + deep + `}`))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "form body longer than") {
		t.Errorf("Decode of a deeply nested message with many leaves: error %v, want a form body bound", err)
	}
	// A long value that fits is fine.
	long := strings.Repeat("a", 4<<20)
	j, err := Decode([]byte(`{"number":1,"s":"` + long + `"}`))
	if err != nil || len(j.Form()) != len("number=1&s=")+len(long) {
		t.Errorf("Decode of a 4 MiB string: %d bytes of form, %v", len(j.Form()), err)
	}
}
