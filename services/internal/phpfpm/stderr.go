package phpfpm

import (
	"bytes"
	"strings"
)

// marker starts each message php-fpm forwards from PHP's error log to
// FastCGI stderr. Messages follow each other with no newline between them
// (php-src sapi/fpm/fpm/fpm_main.c, sapi_cgi_log_message), so the marker
// separates them as much as newlines do.
const marker = "PHP message: "

// Bounds of a Stderr whose fields are zero.
const (
	DefaultMaxMessages     = 20
	DefaultMaxMessageBytes = 2048
)

// minKept is how much of a message is always looked at, whatever
// MaxMessageBytes: enough for the longest prefix that tells what it is.
const minKept = 64

// fatalPrefixes start the log line of a PHP error that ends the script
// (php-src main/main.c, php_error_cb: "PHP %s:  %s in %s on line %d").
var fatalPrefixes = []string{
	"PHP Fatal error:",
	"PHP Parse error:",
	"PHP Core error:",
	"PHP Compile error:",
	"PHP Recoverable fatal error:",
}

// Stderr collects what one request wrote to FastCGI stderr, split into
// messages, within fixed bounds whatever the script writes: at most
// MaxMessages messages of at most MaxMessageBytes bytes each are kept, and
// the rest is only counted. Whatever the bounds, it notices the first PHP
// fatal error and php-fpm's own refusals to run a script.
//
// A message ends at a newline or where the next "PHP message: " entry
// starts. Write never fails; Close ends the last message. The zero Stderr
// is ready to use. It is not safe for concurrent use.
type Stderr struct {
	MaxMessages     int // 0 means DefaultMaxMessages
	MaxMessageBytes int // 0 means DefaultMaxMessageBytes

	messages []string
	dropped  int   // whole messages not kept
	cut      int64 // bytes not kept, of kept and dropped messages
	fatal    string
	refusal  string
	cur      []byte // the kept start of the current message
	curLen   int    // the current message's whole length so far
	matched  int    // bytes of marker matched at the end of the input
}

// Write adds p to the messages. It always returns len(p), nil.
func (s *Stderr) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.matched == 0 {
			// Nothing pending: copy the run up to the next byte that
			// could end a message or start a marker.
			i := bytes.IndexAny(p, "\nP")
			if i < 0 {
				s.add(p)
				break
			}
			s.add(p[:i])
			p = p[i:]
		}
		c := p[0]
		p = p[1:]
		if c == '\n' {
			s.matched = 0
			s.end()
			continue
		}
		s.add([]byte{c})
		if s.matched = advance(s.matched, c); s.matched == len(marker) {
			s.matched = 0
			s.split()
		}
	}
	return n, nil
}

// Close ends the last message, if any.
func (s *Stderr) Close() error {
	s.end()
	return nil
}

// Messages returns the kept messages, without their "PHP message: " prefix,
// each at most MaxMessageBytes long.
func (s *Stderr) Messages() []string { return s.messages }

// Dropped returns how many messages were not kept at all, and how many
// bytes were not kept in all (of messages cut short and of dropped ones).
func (s *Stderr) Dropped() (messages int, bytes int64) { return s.dropped, s.cut }

// Fatal returns the first message that reports a PHP error ending the
// script (fatal, parse, core, compile or recoverable fatal error), cut to
// MaxMessageBytes, or "" if there was none.
func (s *Stderr) Fatal() string { return s.fatal }

// Refusal returns php-fpm's own message when it refused to run the script
// ("Primary script unknown", "Unable to open primary script: ...",
// "Access to the script ... has been denied"), or "".
func (s *Stderr) Refusal() string { return s.refusal }

func (s *Stderr) maxBytes() int {
	if s.MaxMessageBytes > 0 {
		return s.MaxMessageBytes
	}
	return DefaultMaxMessageBytes
}

// add appends p to the current message, keeping only its start: enough
// for MaxMessageBytes after the marker, and to recognise a fatal error.
func (s *Stderr) add(p []byte) {
	room := max(max(s.maxBytes(), minKept)+len(marker)-len(s.cur), 0)
	keep := min(room, len(p))
	s.cur = append(s.cur, p[:keep]...)
	s.curLen += len(p)
	s.cut += int64(len(p) - keep)
}

// split ends the current message just before the marker that was just
// read, which starts the next one.
func (s *Stderr) split() {
	if s.curLen == len(marker) {
		return // the marker starts this message
	}
	// cur holds the start of the message, so the bytes not kept are all
	// at its end: the marker is in cur but for its last notKept bytes.
	notKept := min(s.curLen-len(s.cur), len(marker))
	s.cur = s.cur[:len(s.cur)-(len(marker)-notKept)]
	s.curLen -= len(marker)
	s.cut -= int64(notKept)
	s.end()
	s.cur = append(s.cur, marker...)
	s.curLen = len(marker)
}

// end finishes the current message.
func (s *Stderr) end() {
	if s.curLen == 0 {
		return
	}
	msg := strings.TrimSuffix(string(s.cur), "\r")
	msg = strings.TrimPrefix(msg, marker)
	fatal, refusal := isFatal(msg), isRefusal(msg)
	if len(msg) > s.maxBytes() {
		s.cut += int64(len(msg) - s.maxBytes())
		msg = msg[:s.maxBytes()]
	}
	s.cur, s.curLen = s.cur[:0], 0
	if s.fatal == "" && fatal {
		s.fatal = msg
	}
	if s.refusal == "" && refusal {
		s.refusal = msg
	}
	if strings.TrimSpace(msg) == "" {
		return
	}
	maxMessages := s.MaxMessages
	if maxMessages <= 0 {
		maxMessages = DefaultMaxMessages
	}
	if len(s.messages) >= maxMessages {
		s.dropped++
		s.cut += int64(len(msg))
		return
	}
	s.messages = append(s.messages, msg)
}

func isFatal(msg string) bool {
	for _, p := range fatalPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// isRefusal recognises the messages php-fpm logs to the request's stderr
// when it answers a request itself instead of running the script (php-src
// sapi/fpm/fpm/fpm_main.c and fpm_php.c, fpm_php_limit_extensions).
func isRefusal(msg string) bool {
	return strings.HasPrefix(msg, "Primary script unknown") ||
		strings.HasPrefix(msg, "Unable to open primary script") ||
		strings.Contains(msg, "has been denied (see security.limit_extensions)")
}

// advance is the marker's matching automaton: given that the last n bytes
// matched marker[:n], it returns how many match after byte c.
func advance(n int, c byte) int {
	for {
		if marker[n] == c {
			return n + 1
		}
		if n == 0 {
			return 0
		}
		// The only prefix of "PHP message: " that ends in a shorter
		// prefix is "PHP" (ending in "P"): a mismatch after it falls back
		// to one matched byte, checked again; any other to none.
		if n == 3 {
			n = 1
		} else {
			n = 0
		}
	}
}

// Refused reports whether php-fpm answered a request itself instead of
// running its script, from the answer's status and what the request wrote
// to stderr: 404 when the script does not exist, 403 when
// security.limit_extensions or file permissions forbid it (php-src
// sapi/fpm/fpm/fpm_main.c). It returns php-fpm's message. Such an answer
// says nothing about the job: the pool or the daemon is misconfigured.
func Refused(status int, s *Stderr) (string, bool) {
	if (status != 403 && status != 404) || s.Refusal() == "" {
		return "", false
	}
	return s.Refusal(), true
}
