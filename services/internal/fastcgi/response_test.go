package fastcgi

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name   string
		stdout string
		status int
		header http.Header
		body   string
	}{
		{"empty stdout", "", 200, http.Header{}, ""},
		{"php plain 200",
			"X-Powered-By: PHP/8.2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n<p>hi</p>",
			200, http.Header{"X-Powered-By": {"PHP/8.2"}, "Content-Type": {"text/html; charset=UTF-8"}}, "<p>hi</p>"},
		{"status with reason", "Status: 404 Not Found\r\nX-A: 1\r\n\r\nnope", 404, http.Header{"X-A": {"1"}}, "nope"},
		{"bare status code", "status: 503\r\n\r\n", 503, http.Header{}, ""},
		{"lf line endings", "Status: 201 Created\nX-A: b\n\nbody\n", 201, http.Header{"X-A": {"b"}}, "body\n"},
		{"mixed line endings", "X-A: 1\nX-B: 2\r\n\nbody", 200, http.Header{"X-A": {"1"}, "X-B": {"2"}}, "body"},
		{"no headers", "\r\nbody", 200, http.Header{}, "body"},
		{"repeated key", "Set-Cookie: a=1\r\nx-next: n\r\nSet-Cookie: b=2\r\n\r\n", 200,
			http.Header{"Set-Cookie": {"a=1", "b=2"}, "X-Next": {"n"}}, ""},
		{"value whitespace", "X-A:  \tv w \r\nX-Empty:\r\n\r\n", 200, http.Header{"X-A": {"v w"}, "X-Empty": {""}}, ""},
		{"colon in value", "Location: http://x/y\r\n\r\n", 200, http.Header{"Location": {"http://x/y"}}, ""},
		{"blank line in body", "X-A: 1\r\n\r\nline\r\n\r\nmore", 200, http.Header{"X-A": {"1"}}, "line\r\n\r\nmore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body, err := parseHeader([]byte(tt.stdout))
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("got status %d, want %d", status, tt.status)
			}
			if !reflect.DeepEqual(header, tt.header) {
				t.Errorf("got header %q, want %q", header, tt.header)
			}
			if string(body) != tt.body {
				t.Errorf("got body %q, want %q", body, tt.body)
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	for _, stdout := range []string{
		"no header terminator",
		"X-A: 1\r\n",
		"X-A: 1\r\nbody without blank line",
		"Status: abc\r\n\r\n",
		"Status: 99\r\n\r\n",
		"Status: 099 Low\r\n\r\n",
		"Status: 4040\r\n\r\n",
		"Status: 404x\r\n\r\n",
		"Status:\r\n\r\n",
		"no colon\r\n\r\n",
		": no key\r\n\r\n",
		"Bad Key: v\r\n\r\n",
		"X-A: 1\r\n folded\r\n\r\n",
	} {
		if _, _, _, err := parseHeader([]byte(stdout)); !errors.Is(err, ErrProtocol) {
			t.Errorf("parseHeader(%q): got error %v, want ErrProtocol", stdout, err)
		}
	}
}

// phpResponse is a typical php-fpm answer: a warning on STDERR and a page.
func phpResponse() []byte {
	return slices.Concat(
		encodeRecord(typeStderr, requestID, "PHP Warning:  Undefined variable $x in /srv/app/job.php on line 3", 6),
		encodeRecord(typeStdout, requestID, "X-Powered-By: PHP/8.2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n{\"ok\":true}", 1),
		endRequestRecord(0, statusRequestComplete),
	)
}

func FuzzParseResponse(f *testing.F) {
	f.Add(phpResponse())
	f.Add(endRequestRecord(0, statusRequestComplete))
	f.Add(endRequestRecord(0, statusOverloaded))
	f.Add(slices.Concat(encodeRecord(typeStdout, requestID, "Status: 404 Not Found\nX: y\n\n", 0), endRequestRecord(3, 0)))
	f.Add([]byte("\x01\x06\x00\x01\x00\x05\x03\x00Stat"))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := readResponse(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrUnavailable", err)
			}
			return
		}
		if resp.Status < 100 || resp.Status > 999 {
			t.Fatalf("status %d out of range", resp.Status)
		}
		if resp.Header == nil || resp.Header["Status"] != nil {
			t.Fatalf("bad header %q", resp.Header)
		}
	})
}

func BenchmarkParseResponse(b *testing.B) {
	stream := phpResponse()
	r := bytes.NewReader(stream)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		r.Reset(stream)
		br.Reset(r)
		resp, err := readResponse(br)
		if err != nil || resp.Status != 200 || len(resp.Stderr) == 0 {
			b.Fatalf("got %+v, %v", resp, err)
		}
	}
}
