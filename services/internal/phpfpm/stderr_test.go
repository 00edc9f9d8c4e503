package phpfpm

import (
	"slices"
	"strings"
	"testing"
)

func TestStderrSplitsMessages(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
		fatal  string
	}{
		{"lines", []string{"one\ntwo\n"}, []string{"one", "two"}, ""},
		{"no final newline", []string{"one\ntwo"}, []string{"one", "two"}, ""},
		{"crlf and blank lines", []string{"one\r\n\n\ntwo\r\n"}, []string{"one", "two"}, ""},
		{"php messages without newlines", []string{"PHP message: a", "PHP message: bPHP message: c"}, []string{"a", "b", "c"}, ""},
		{"marker split across writes", []string{"PHP message: aPHP mes", "sage: b"}, []string{"a", "b"}, ""},
		{"marker one byte at a time", strings.Split("PHP message: xPHP message: y", ""), []string{"x", "y"}, ""},
		{"PHPHP falls back", []string{"PHP message: PHPHP message: z"}, []string{"PH", "z"}, ""},
		{"PHP alone is text", []string{"PHP is fine\n"}, []string{"PHP is fine"}, ""},
		{"fatal error", []string{"PHP message: Processing 1PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function nope() in /app/w.php:3"},
			[]string{"Processing 1", "PHP Fatal error:  Uncaught Error: Call to undefined function nope() in /app/w.php:3"},
			"PHP Fatal error:  Uncaught Error: Call to undefined function nope() in /app/w.php:3"},
		{"parse error", []string{"PHP message: PHP Parse error:  syntax error, unexpected end of file in /app/w.php on line 9\n"},
			[]string{"PHP Parse error:  syntax error, unexpected end of file in /app/w.php on line 9"},
			"PHP Parse error:  syntax error, unexpected end of file in /app/w.php on line 9"},
		{"warning is not fatal", []string{"PHP message: PHP Warning:  Undefined variable $x"}, []string{"PHP Warning:  Undefined variable $x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Stderr
			for _, w := range tt.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s.Close()
			if got := s.Messages(); !slices.Equal(got, tt.want) {
				t.Errorf("Messages() = %q, want %q", got, tt.want)
			}
			if got := s.Fatal(); got != tt.fatal {
				t.Errorf("Fatal() = %q, want %q", got, tt.fatal)
			}
			if n, b := s.Dropped(); n != 0 || b != 0 {
				t.Errorf("Dropped() = %d, %d, want 0, 0", n, b)
			}
		})
	}
}

func TestStderrBounds(t *testing.T) {
	s := Stderr{MaxMessages: 3, MaxMessageBytes: 10}
	// 200,000 error_log() calls, as one stream with no newlines, then a
	// fatal error at the very end.
	var b strings.Builder
	for range 200_000 {
		b.WriteString("PHP message: 0123456789abcdef")
	}
	b.WriteString("PHP message: PHP Fatal error:  Allowed memory size exhausted")
	in := b.String()
	for len(in) > 0 {
		n := min(len(in), 8192)
		s.Write([]byte(in[:n]))
		in = in[n:]
	}
	s.Close()
	if got, want := s.Messages(), []string{"0123456789", "0123456789", "0123456789"}; !slices.Equal(got, want) {
		t.Errorf("Messages() = %q, want %q", got, want)
	}
	msgs, bytes := s.Dropped()
	if msgs != 200_001-3 {
		t.Errorf("dropped %d messages, want %d", msgs, 200_001-3)
	}
	// Every byte of text beyond the kept 3×10 was counted.
	wantBytes := int64(200_000*16+len("PHP Fatal error:  Allowed memory size exhausted")) - 30
	if bytes != wantBytes {
		t.Errorf("dropped %d bytes, want %d", bytes, wantBytes)
	}
	if got := s.Fatal(); got != "PHP Fatal e"[:10] {
		t.Errorf("Fatal() = %q, want the fatal error cut to 10 bytes", got)
	}
	if cap(s.cur) > 64 {
		t.Errorf("current message buffer grew to %d bytes", cap(s.cur))
	}
}

func TestStderrLongLineIsCut(t *testing.T) {
	s := Stderr{MaxMessageBytes: 4}
	s.Write([]byte(strings.Repeat("x", 1000) + "\nok\n"))
	s.Close()
	if got, want := s.Messages(), []string{"xxxx", "ok"}; !slices.Equal(got, want) {
		t.Errorf("Messages() = %q, want %q", got, want)
	}
	if _, b := s.Dropped(); b != 996 {
		t.Errorf("dropped %d bytes, want 996", b)
	}
}

func TestStderrRefusal(t *testing.T) {
	for _, msg := range []string{
		"Primary script unknown",
		"Unable to open primary script: /app/w.php (No such file or directory)",
		"Access to the script '/app/w.txt' has been denied (see security.limit_extensions)",
	} {
		var s Stderr
		s.Write([]byte(msg))
		s.Close()
		if s.Refusal() != msg {
			t.Errorf("Refusal() = %q for %q", s.Refusal(), msg)
		}
	}
	var s Stderr
	s.Write([]byte("PHP message: Primary script unknown is what my job logs"))
	s.Close()
	if s.Refusal() == "" {
		// A script's own message starting like php-fpm's is still read as
		// a refusal; the status check in Refused guards against that.
		t.Log("note: prefix-only message not taken as refusal")
	}
}
