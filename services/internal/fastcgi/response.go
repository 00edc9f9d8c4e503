package fastcgi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
)

// parseHeader splits a responder's STDOUT into the CGI header block and the
// body. Lines may end in "\r\n" or "\n" and the block ends at the first empty
// line. Empty STDOUT is a 200 with no headers and no body; STDOUT without the
// empty line is a protocol error, since the body cannot be told apart.
func parseHeader(stdout []byte) (status int, h http.Header, body []byte, err error) {
	status = http.StatusOK
	if len(stdout) == 0 {
		return status, http.Header{}, nil, nil
	}

	// Find the end of the block first, counting its lines, so that a single
	// string holds every key and value and a single slice every []string.
	end, lines := 0, 0
	for {
		i := bytes.IndexByte(stdout[end:], '\n')
		if i < 0 {
			return 0, nil, nil, fmt.Errorf("%w: response header block not terminated", ErrProtocol)
		}
		line := stdout[end : end+i]
		end += i + 1
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			break
		}
		lines++
	}
	block, body := string(stdout[:end]), stdout[end:]

	h = make(http.Header, lines)
	values := make([]string, lines)
	for i := range lines {
		var line string
		line, block, _ = strings.Cut(block, "\n")
		line = strings.TrimSuffix(line, "\r")
		key, value, ok := strings.Cut(line, ":")
		if !ok || !validKey(key) {
			return 0, nil, nil, fmt.Errorf("%w: malformed response header line %q", ErrProtocol, line)
		}
		key = textproto.CanonicalMIMEHeaderKey(key)
		value = strings.Trim(value, " \t")
		if key == "Status" {
			if status, ok = parseStatus(value); !ok {
				return 0, nil, nil, fmt.Errorf("%w: malformed Status header %q", ErrProtocol, value)
			}
			continue
		}
		if prev, seen := h[key]; seen {
			h[key] = append(prev, value)
		} else {
			// The capacity limit makes a later repeat of key copy
			// rather than overwrite the next line's value.
			values[i] = value
			h[key] = values[i : i+1 : i+1]
		}
	}
	return status, h, body, nil
}

// validKey reports whether key is a non-empty run of printable ASCII without
// spaces; this also rejects obsolete folded continuation lines.
func validKey(key string) bool {
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return false
		}
	}
	return key != ""
}

// parseStatus parses a CGI Status value such as "404" or "404 Not Found".
func parseStatus(v string) (int, bool) {
	if len(v) < 3 || len(v) > 3 && v[3] != ' ' {
		return 0, false
	}
	code := 0
	for i := range 3 {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 100
}
