package phpform

import (
	"strconv"
	"strings"
)

// PHP's form parser, php_register_variable_ex in php-src
// main/php_variables.c, stores the field k0[k1][k2]=v as
// $_POST[k0][k1][k2] = v, but changes names that are not plain. The rules
// here are those of PHP 8.

// topNameKept reports whether PHP keeps k, the name of a top-level field,
// as it is. PHP reads the name as a C string, so a NUL cuts it; it drops
// leading spaces, turns ' ' and '.' into '_', starts an index at the first
// '[' (or, with no ']' after it, turns it into '_' too), and drops a field
// whose name ends up empty.
func topNameKept(k string) bool {
	return k != "" && !strings.ContainsAny(k, "\x00 .[")
}

// indexKept reports whether PHP keeps k as the index in a[k]. The index
// ends at the first ']' (or NUL), and PHP reads an empty index, or one of a
// single white-space byte, as a[]: a new element at the end.
func indexKept(k string) bool {
	return k != "" && !(len(k) == 1 && isSpace(k[0])) && !strings.ContainsAny(k, "\x00]")
}

// isSpace is C's isspace in the "C" locale, which PHP uses there.
func isSpace(c byte) bool {
	return c == ' ' || '\t' <= c && c <= '\r'
}

// phpPath returns where PHP's form parser stores a field named name: the
// keys from $_POST down, with "" for a new element (a[]), or nil if it
// drops the field. It follows php_register_variable_ex step by step, apart
// from max_input_nesting_level, to explain a name that topNameKept or
// indexKept refuse, and to check them in tests.
func phpPath(name string) []string {
	name, _, _ = strings.Cut(name, "\x00")
	top, rest, nested := strings.Cut(strings.TrimLeft(name, " "), "[")
	top = underscores(top, " .")
	if top == "" {
		return nil
	}
	path := []string{top}
	for nested {
		end := strings.IndexByte(rest, ']')
		switch {
		case end < 0:
			// Without a ']' the '[' opened no index. Below the top level
			// PHP drops the rest of the name.
			if len(path) == 1 {
				path[0] += "_" + underscores(rest, " .[")
			}
			return path
		case end == 0 || end == 1 && isSpace(rest[0]):
			path = append(path, "")
		default:
			path = append(path, rest[:end])
		}
		// PHP ignores whatever follows an index, unless it is another.
		rest, nested = strings.CutPrefix(rest[end+1:], "[")
	}
	return path
}

// underscores returns s with each of the bytes in chars replaced by '_'.
func underscores(s, chars string) string {
	b := []byte(s)
	for i, c := range b {
		if strings.IndexByte(chars, c) >= 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// renamed returns the error for a field whose name PHP would change.
func renamed(name []byte) error {
	path := phpPath(string(name))
	switch len(path) {
	case 0:
		return mismatch("field %s: PHP would drop it, for want of a name", quote(name))
	case 1:
		return mismatch("field %s: PHP would rename it to %s", quote(name), quote(path[0]))
	}
	var b strings.Builder
	b.WriteString("$_POST")
	for _, k := range path {
		if k == "" {
			b.WriteString("[]")
		} else {
			b.WriteString("[" + quote(k) + "]")
		}
	}
	return mismatch("field %s: PHP would read it as %s", quote(name), b.String())
}

// quote quotes a field name for an error message, shortened if long.
func quote[T string | []byte](s T) string {
	const limit = 60
	if len(s) > limit {
		return strconv.Quote(string(s[:limit])) + "..."
	}
	return strconv.Quote(string(s))
}
