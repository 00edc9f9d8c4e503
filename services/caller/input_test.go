package main

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  []int64
	}{
		{"one argument", []string{"42"}, "", []int64{42}},
		{"several arguments", []string{"1", "-2", "007", "+5", "-0"}, "", []int64{1, -2, 7, 5, 0}},
		{"int64 limits", []string{"9223372036854775807", "-9223372036854775808"}, "", []int64{9223372036854775807, -9223372036854775808}},
		{"stdin", []string{"-"}, "1\n2\n3\n", []int64{1, 2, 3}},
		{"stdin with CRLF and no final newline", []string{"-"}, "1\r\n-2\r\n3", []int64{1, -2, 3}},
		{"stdin with a final CR", []string{"-"}, "4\r", []int64{4}},
		{"longest stdin line", []string{"-"}, strings.Repeat("0", bufio.MaxScanTokenSize-2) + "7\n", []int64{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseInput(tt.args, strings.NewReader(tt.stdin))
			if got := numbersOf(in); err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("parseInput(%q, %q) = %v, %v; want %v", tt.args, clip(tt.stdin), got, err, tt.want)
			}
		})
	}
}

func TestParseInputLeavesStdinAloneForArguments(t *testing.T) {
	stdin := iotest.ErrReader(errors.New("stdin must not be read"))
	if in, err := parseInput([]string{"1", "2"}, stdin); err != nil || !slices.Equal(numbersOf(in), []int64{1, 2}) {
		t.Errorf("parseInput = %v, %v; want [1 2]", in, err)
	}
}

// TestParseInputRangeErrors checks that only a number is called out of
// range: strconv.ParseInt says so of any text whose digits overflow before a
// character that is not one.
func TestParseInputRangeErrors(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"19000000000000000000A", `invalid number "19000000000000000000A" (argument 1)`},
		{"-99999999999999999999-", `invalid number "-99999999999999999999-" (argument 1)`},
		{"99999999999999999999", `invalid number "99999999999999999999" (argument 1): out of the int64 range`},
		{"+09223372036854775808", `invalid number "+09223372036854775808" (argument 1): out of the int64 range`},
	} {
		_, err := parseInput([]string{tt.arg}, strings.NewReader(""))
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseInput(%q) error %v, want %q", tt.arg, err, tt.want)
		}
	}
}

// FuzzParseInput checks parseInput against expectInput, a plain restatement
// of its contract that shares no code with it. argv holds the arguments,
// each ended by a NUL byte (the last one may lack it), so that every list of
// arguments, empty ones included, has a spelling.
func FuzzParseInput(f *testing.F) {
	for _, seed := range []struct{ argv, stdin string }{
		{"", ""},
		{"\x00", ""},
		{"42", ""},
		{"1\x00-2\x00007\x00+5\x00-0\x00", ""},
		{"9223372036854775807\x00-9223372036854775808\x00", ""},
		{"9223372036854775808\x00", ""},
		{"1\x00-\x00", ""},
		{"-\x001\x00", ""},
		{"1\x00abc\x00", ""},
		{"+\x00", ""},
		{strings.Repeat("x", 100), ""},
		{"-", ""},
		{"-", "1\n2\r\n-3"},
		{"-", "\n"},
		{"-", "1\r\r\n"},
		{"-", "4\r"},
		{"-", "1\n\n2\n"},
		{"-", "99999999999999999999\n"},
		// No seed reaches the line length limit of 64 KiB: the fuzzer
		// would spend its time minimising inputs grown from it.
		// TestParseInputLineLimit checks the limit.
	} {
		f.Add(seed.argv, seed.stdin)
	}
	f.Fuzz(func(t *testing.T, argv, stdin string) {
		checkParseInput(t, splitArgv(argv), stdin)
	})
}

// checkParseInput checks what parseInput returns for args and stdin against
// expectInput, then that flags before the arguments change no job.
func checkParseInput(t *testing.T, args []string, stdin string) {
	t.Helper()
	want, wantErr, flagsOrJSON := expectInput(args, stdin)
	if flagsOrJSON {
		return // beyond the oracle: TestParseInputJobs and TestParseInputRejects
	}
	in, err := parseInput(args, strings.NewReader(stdin))
	if wantErr != "" {
		var ue *usageError
		if !errors.As(err, &ue) || err.Error() != wantErr {
			t.Fatalf("parseInput(%q, %q) = %v, %v; want the usage error %q", args, clip(stdin), in, err, wantErr)
		}
	} else {
		if err != nil || len(in.jobs) != len(want) {
			t.Fatalf("parseInput(%q, %q) = %d jobs, %v; want %d numbers", args, clip(stdin), len(in.jobs), err, len(want))
		}
		for i, j := range in.jobs {
			if j.label != want[i] || string(j.body) != `{"number":`+want[i]+`}` {
				t.Fatalf("parseInput(%q, %q): job %d is %s %s, want %s", args, clip(stdin), i+1, j.label, j.body, want[i])
			}
		}
	}
	if len(args) == 0 {
		return
	}
	// Flags before the arguments change no job, and no verdict.
	flagged := append([]string{"--type", "t", "--header=k=v", "--delay", "1s", "--priority=9"}, args...)
	fin, ferr := parseInput(flagged, strings.NewReader(stdin))
	var ue *usageError
	switch {
	case wantErr != "" && !errors.As(ferr, &ue):
		t.Fatalf("parseInput(%q, %q) = %v, %v; want a usage error", flagged, clip(stdin), fin, ferr)
	case wantErr == "" && (ferr != nil || !slices.EqualFunc(fin.jobs, in.jobs, func(a, b payload) bool { return a.label == b.label })):
		t.Fatalf("parseInput(%q, %q) = %v, %v; want the jobs of %v", flagged, clip(stdin), fin, ferr, in.jobs)
	case wantErr == "" && (fin.opts.jobType != "t" || fin.opts.headers["k"] != "v" || fin.opts.delay != time.Second || fin.opts.priority != 9):
		t.Fatalf("parseInput(%q): options %+v", flagged, fin.opts)
	}
}

// TestParseInputLineLimit checks parseInput against expectInput around the
// longest line that bufio.Scanner takes.
func TestParseInputLineLimit(t *testing.T) {
	for _, n := range []int{bufio.MaxScanTokenSize - 2, bufio.MaxScanTokenSize - 1, bufio.MaxScanTokenSize} {
		line := strings.Repeat("0", n-1) + "7"
		for _, around := range [][2]string{
			{"", ""}, {"", "\n"}, {"", "\r"}, {"", "\r\n"}, {"1\n", "\n2\n"}, {"x\n", "\n"},
		} {
			t.Run(fmt.Sprintf("%q+%d bytes+%q", around[0], n, around[1]), func(t *testing.T) {
				checkParseInput(t, []string{"-"}, around[0]+line+around[1])
			})
		}
	}
}

// splitArgv splits argv as FuzzParseInput describes.
func splitArgv(argv string) []string {
	if argv == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(argv, "\x00"), "\x00")
}

// expectInput returns what parseInput must return for args and stdin: the
// numbers in canonical base-10 form, or else the text of its usage error.
// It knows numbers only: it returns flagsOrJSON for an argument that
// starts with "--" (a flag) or a line of stdin that starts with '{' (a JSON
// object).
func expectInput(args []string, stdin string) (numbers []string, usage string, flagsOrJSON bool) {
	if len(args) == 0 {
		return nil, "no numbers given", false
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			return nil, "", true
		}
	}
	var values []string // each with where it comes from
	var where string
	if len(args) == 1 && args[0] == "-" {
		where = "stdin line"
		lines := strings.SplitAfter(stdin, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1] // after the last newline, or no input at all
		}
		if len(lines) == 0 {
			return nil, "no numbers on standard input", false
		}
		for _, line := range lines {
			line = strings.TrimSuffix(line, "\n")
			values = append(values, strings.TrimSuffix(line, "\r"))
			if strings.HasPrefix(line, "{") {
				return nil, "", true
			}
			// A line and its newline must fit in bufio.Scanner's buffer,
			// except at the end of the input, where the buffer must still
			// not be full.
			if len(line) >= bufio.MaxScanTokenSize {
				values[len(values)-1] = "\x00too long"
			}
		}
	} else {
		where = "argument"
		for i, a := range args {
			if a == "-" {
				return nil, fmt.Sprintf(`"-" (read standard input) must be the only argument (argument %d)`, i+1), false
			}
		}
		values = args
	}
	for i, v := range values {
		if v == "\x00too long" {
			return nil, fmt.Sprintf("invalid number (%s %d): line too long", where, i+1), false
		}
		canonical, syntaxOK, inRange := canonicalInt(v)
		shown := v
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		switch {
		case !syntaxOK:
			return nil, fmt.Sprintf("invalid number %q (%s %d)", shown, where, i+1), false
		case !inRange:
			return nil, fmt.Sprintf("invalid number %q (%s %d): out of the int64 range", shown, where, i+1), false
		}
		numbers = append(numbers, canonical)
	}
	return numbers, "", false
}

// canonicalInt tells whether s is an optional sign and one or more ASCII
// digits, and whether that value is within int64; if so, it returns it as
// strconv.FormatInt writes it: no '+', no leading zeros, no "-0".
func canonicalInt(s string) (canonical string, syntaxOK, inRange bool) {
	digits, negative := strings.CutPrefix(s, "-")
	if !negative {
		digits = strings.TrimPrefix(s, "+")
	}
	if digits == "" || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", false, false
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", true, true
	}
	limit := "9223372036854775807"
	if negative {
		limit = "9223372036854775808"
		canonical = "-"
	}
	// Among numbers without leading zeros, the longer is the larger, and
	// with equal lengths, the order of the strings is that of the numbers.
	if len(digits) > len(limit) || len(digits) == len(limit) && digits > limit {
		return "", true, false
	}
	return canonical + digits, true, true
}

// TestCanonicalInt checks the fuzz test's oracle against strconv.
func TestCanonicalInt(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "000", "7", "+7", "-7", "007", "-007",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"09223372036854775807", "99999999999999999999", "-", "+", "", "+-1", "--1", "1_0", "0x1", "1 ", "١",
	} {
		got, syntaxOK, inRange := canonicalInt(s)
		n, err := strconv.ParseInt(s, 10, 64)
		wantSyntax := !errors.Is(err, strconv.ErrSyntax)
		if syntaxOK != wantSyntax || inRange != (err == nil) || err == nil && got != strconv.FormatInt(n, 10) {
			t.Errorf("canonicalInt(%q) = %q, %v, %v; strconv says %d, %v", s, got, syntaxOK, inRange, n, err)
		}
	}
}

// numbersOf returns the numbers of in's jobs, or nil if a job is not
// {"number":N}.
func numbersOf(in input) []int64 {
	var ns []int64
	for _, j := range in.jobs {
		n, err := strconv.ParseInt(j.label, 10, 64)
		if err != nil || string(j.body) != `{"number":`+j.label+`}` {
			return nil
		}
		ns = append(ns, n)
	}
	return ns
}

func TestParseInputJobs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  []string // bodies
	}{
		{"json", []string{"--json", `{ "to": "a@b" }`}, "", []string{`{"to":"a@b"}`}},
		{"json with =", []string{`--json={"a":[1,2]}`}, "", []string{`{"a":[1,2]}`}},
		{"numbers and json in order", []string{"1", "--json", "{}", "2"}, "", []string{`{"number":1}`, `{}`, `{"number":2}`}},
		{"flags after the numbers", []string{"42", "--type", "x"}, "", []string{`{"number":42}`}},
		{"after --, a number", []string{"--", "-5"}, "", []string{`{"number":-5}`}},
		{"stdin mixes numbers and objects", []string{"--type=x", "-"}, "1\n{\"number\":2}\r\n{\"to\": \"a\"}\n", []string{`{"number":1}`, `{"number":2}`, `{"to":"a"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseInput(tt.args, strings.NewReader(tt.stdin))
			var got []string
			for _, j := range in.jobs {
				got = append(got, string(j.body))
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("parseInput(%q, %q) = %q, %v; want %q", tt.args, tt.stdin, got, err, tt.want)
			}
		})
	}
}

func TestParseInputFlags(t *testing.T) {
	in, err := parseInput([]string{"--type", "send-mail", "--header", "tenant=acme", "--header=a=b=c", "--delay=1m30s", "--priority", "255", "7"}, nil)
	o := in.opts
	if err != nil || o.jobType != "send-mail" || len(o.headers) != 2 || o.headers["tenant"] != "acme" || o.headers["a"] != "b=c" ||
		o.delay != 90*time.Second || o.priority != 255 {
		t.Errorf("parseInput = %+v, %v", in, err)
	}
}

func TestParseInputRejects(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"unknown flag", []string{"--nope", "1"}, "", `unknown flag "--nope" (argument 1)`},
		{"flag without value", []string{"1", "--type"}, "", "flag --type needs a value (argument 2)"},
		{"flags only", []string{"--type", "x"}, "", "no jobs given"},
		{"type twice", []string{"--type=a", "--type=b", "1"}, "", "flag --type given twice (argument 2)"},
		{"empty type", []string{"--type=", "1"}, "", `invalid --type ""`},
		{"long type", []string{"--type", strings.Repeat("t", 256), "1"}, "", "1 to 255 bytes"},
		{"header without =", []string{"--header", "k", "1"}, "", `invalid --header "k" (argument 2): want NAME=VALUE`},
		{"header without name", []string{"--header", "=v", "1"}, "", "want NAME=VALUE"},
		{"daemon's header", []string{"--header", "X-FPMQ-Due=1", "1"}, "", "x-fpmq- headers are the daemon's"},
		{"header twice", []string{"--header", "k=1", "--header", "k=2", "1"}, "", "k given twice"},
		{"negative delay", []string{"--delay", "-1s", "1"}, "", `invalid --delay "-1s"`},
		{"delay too long", []string{"--delay", "169h", "1"}, "", "from 0s to 168h0m0s"},
		{"delay without unit", []string{"--delay", "30", "1"}, "", `invalid --delay "30"`},
		{"priority too high", []string{"--priority", "256", "1"}, "", `invalid --priority "256" (argument 2): want 0 to 255`},
		{"negative priority", []string{"--priority", "-1", "1"}, "", "want 0 to 255"},
		{"json not an object", []string{"--json", "[1]"}, "", `invalid JSON object "[1]" (--json, argument 2): not an object`},
		{"json invalid", []string{"--json", "{"}, "", `invalid JSON object "{" (--json, argument 2)`},
		{"json with trailing data", []string{"--json", "{} {}"}, "", "invalid JSON object"},
		{"json and dash", []string{"--json", "{}", "-"}, "", `"-" (read standard input) must be the only argument (argument 3)`},
		{"bad object on stdin", []string{"-"}, "1\n{\"a\":}\n", `invalid JSON object "{\"a\":}" (stdin line 2)`},
		{"bad number after flags", []string{"--type", "x", "y"}, "", `invalid number "y" (argument 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseInput(tt.args, strings.NewReader(tt.stdin))
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) || in.jobs != nil {
				t.Errorf("parseInput(%q) = %v, %v; want a usage error with %q", tt.args, in.jobs, err, tt.want)
			}
		})
	}
}
