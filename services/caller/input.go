package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// parseInput returns the numbers to publish: one per argument, or one per
// line of stdin when the only argument is "-" (a trailing '\r' on a line is
// ignored). It reads all of stdin, so that nothing is published unless every
// number is valid. Bad input is a *usageError that names the value and where
// it came from; only a failure to read stdin is not, and comes with the
// numbers read before it. A "-" among other
// arguments is reported before any bad number: it is a mistake in how the
// caller is called, which fixing the numbers would not cure.
func parseInput(args []string, stdin io.Reader) ([]int64, error) {
	if len(args) == 0 {
		return nil, usagef("no numbers given")
	}
	if len(args) == 1 && args[0] == "-" {
		return readNumbers(stdin)
	}
	if i := slices.Index(args, "-"); i >= 0 {
		return nil, usagef(`"-" (read standard input) must be the only argument (argument %d)`, i+1)
	}
	numbers := make([]int64, len(args))
	for i, arg := range args {
		n, err := parseNumber(arg, "argument", i+1)
		if err != nil {
			return nil, err
		}
		numbers[i] = n
	}
	return numbers, nil
}

// readNumbers reads one number per line from r. A line may be at most
// bufio.MaxScanTokenSize-1 bytes long, '\r' included.
func readNumbers(r io.Reader) ([]int64, error) {
	var numbers []int64
	sc := bufio.NewScanner(r)
	line := 0
	// bufio.ScanLines already drops the '\r' of a "\r\n" line end, and of
	// a last line without '\n'.
	for sc.Scan() {
		line++
		n, err := parseNumber(sc.Text(), "stdin line", line)
		if err != nil {
			return nil, err
		}
		numbers = append(numbers, n)
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, usagef("invalid number (stdin line %d): line too long", line+1)
	} else if err != nil {
		return numbers, fmt.Errorf("read standard input: %w", err)
	}
	if line == 0 {
		return nil, usagef("no numbers on standard input")
	}
	return numbers, nil
}

// parseNumber parses s as a base-10 int64; where and index say where s came
// from, for the error.
func parseNumber(s, where string, index int) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	// ParseInt reports a range error as soon as the digits overflow, even
	// if a character that is not a digit follows.
	if errors.Is(err, strconv.ErrRange) && isDecimal(s) {
		return 0, usagef("invalid number %q (%s %d): out of the int64 range", clip(s), where, index)
	}
	if err != nil {
		return 0, usagef("invalid number %q (%s %d)", clip(s), where, index)
	}
	return n, nil
}

// isDecimal tells whether s is an optional sign and one or more ASCII
// digits.
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
