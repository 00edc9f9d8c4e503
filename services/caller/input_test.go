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
			got, err := parseInput(tt.args, strings.NewReader(tt.stdin))
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("parseInput(%q, %q) = %v, %v; want %v", tt.args, clip(tt.stdin), got, err, tt.want)
			}
		})
	}
}

func TestParseInputLeavesStdinAloneForArguments(t *testing.T) {
	stdin := iotest.ErrReader(errors.New("stdin must not be read"))
	if got, err := parseInput([]string{"1", "2"}, stdin); err != nil || !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("parseInput = %v, %v; want [1 2]", got, err)
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
// expectInput.
func checkParseInput(t *testing.T, args []string, stdin string) {
	t.Helper()
	got, err := parseInput(args, strings.NewReader(stdin))
	want, wantErr := expectInput(args, stdin)
	if wantErr != "" {
		var ue *usageError
		if !errors.As(err, &ue) || err.Error() != wantErr {
			t.Fatalf("parseInput(%q, %q) = %v, %v; want the usage error %q", args, clip(stdin), got, err, wantErr)
		}
		return
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("parseInput(%q, %q) = %d numbers, %v; want %d numbers", args, clip(stdin), len(got), err, len(want))
	}
	for i, n := range got {
		if s := strconv.FormatInt(n, 10); s != want[i] {
			t.Fatalf("parseInput(%q, %q): number %d is %s, want %s", args, clip(stdin), i+1, s, want[i])
		}
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
func expectInput(args []string, stdin string) (numbers []string, usage string) {
	if len(args) == 0 {
		return nil, "no numbers given"
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
			return nil, "no numbers on standard input"
		}
		for _, line := range lines {
			line = strings.TrimSuffix(line, "\n")
			values = append(values, strings.TrimSuffix(line, "\r"))
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
				return nil, fmt.Sprintf(`"-" (read standard input) must be the only argument (argument %d)`, i+1)
			}
		}
		values = args
	}
	for i, v := range values {
		if v == "\x00too long" {
			return nil, fmt.Sprintf("invalid number (%s %d): line too long", where, i+1)
		}
		canonical, syntaxOK, inRange := canonicalInt(v)
		shown := v
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		switch {
		case !syntaxOK:
			return nil, fmt.Sprintf("invalid number %q (%s %d)", shown, where, i+1)
		case !inRange:
			return nil, fmt.Sprintf("invalid number %q (%s %d): out of the int64 range", shown, where, i+1)
		}
		numbers = append(numbers, canonical)
	}
	return numbers, ""
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
