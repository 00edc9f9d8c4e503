package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// parseInput returns the numbers to publish: one per argument, or one per
// line of stdin when the only argument is "-" (a trailing '\r' on a line is
// ignored). It reads all of stdin, so that nothing is published unless every
// number is valid. Bad input is a *usageError that names the value and where
// it came from; only a failure to read stdin is not.
func parseInput(args []string, stdin io.Reader) ([]int64, error) {
	if len(args) == 0 {
		return nil, usagef("no numbers given")
	}
	if len(args) == 1 && args[0] == "-" {
		return readNumbers(stdin)
	}
	numbers := make([]int64, len(args))
	for i, arg := range args {
		if arg == "-" {
			return nil, usagef(`"-" (read standard input) must be the only argument (argument %d)`, i+1)
		}
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
		return nil, fmt.Errorf("read standard input: %w", err)
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
	if errors.Is(err, strconv.ErrRange) {
		return 0, usagef("invalid number %q (%s %d): out of the int64 range", clip(s), where, index)
	}
	if err != nil {
		return 0, usagef("invalid number %q (%s %d)", clip(s), where, index)
	}
	return n, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
