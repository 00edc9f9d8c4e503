package fastcgi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// responsesEqual compares responses, taking a nil and an empty Body alike.
func responsesEqual(a, b *Response) bool {
	return a.Status == b.Status && reflect.DeepEqual(a.Header, b.Header) && bytes.Equal(a.Body, b.Body) &&
		a.BodySize == b.BodySize && a.AppStatus == b.AppStatus
}

// stdoutResponse is a complete response whose STDOUT is stdout, cut into
// records of at most chunk bytes.
func stdoutResponse(stdout string, chunk int) []byte {
	var b []byte
	for part := range slices.Chunk([]byte(stdout), chunk) {
		b = append(b, encodeRecord(typeStdout, requestID, string(part), 3)...)
	}
	return append(b, endRequestRecord(0, statusRequestComplete)...)
}

// readFrom reads one response from stream with the default limits.
func readFrom(stream []byte, stderr io.Writer) (*Response, error) {
	return newResponseReader(bytes.NewReader(stream), defaultMaxHeaderBytes, defaultMaxBodyKept).read(stderr)
}

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
		{"long line", "X-Long: " + strings.Repeat("y", 5000) + "\r\n\r\n", 200, http.Header{"X-Long": {strings.Repeat("y", 5000)}}, ""},
	}
	for _, tt := range tests {
		// Record boundaries anywhere, even inside "\r\n", change nothing.
		for _, chunk := range []int{1, 2, 3, 7, maxRecord} {
			resp, err := readFrom(stdoutResponse(tt.stdout, chunk), nil)
			if err != nil {
				t.Errorf("%s, %d-byte records: %v", tt.name, chunk, err)
				continue
			}
			want := &Response{Status: tt.status, Header: tt.header, Body: []byte(tt.body), BodySize: int64(len(tt.body))}
			if !responsesEqual(resp, want) {
				t.Errorf("%s, %d-byte records: got %+v, want %+v", tt.name, chunk, resp, want)
			}
		}
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
		"Status: 200\r\nStatus: 20\r\n\r\n",
		"no colon\r\n\r\n",
		": no key\r\n\r\n",
		"Bad Key: v\r\n\r\n",
		" X-A: initial fold\r\n\r\n",
		"X-A: 1\r\n folded\r\n\r\n",
		"X-A: 1\r\n\tfolded\r\n\r\n",
	} {
		if _, err := readFrom(stdoutResponse(stdout, maxRecord), nil); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: got error %v, want ErrProtocol", stdout, err)
		}
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	block := "X-A: " + strings.Repeat("a", 100) + "\r\n\r\n" // 109 bytes, blank line included
	for _, tt := range []struct {
		max int
		ok  bool
	}{{108, false}, {109, true}} {
		rr := newResponseReader(bytes.NewReader(stdoutResponse(block+"body", 10)), tt.max, 100)
		resp, err := rr.read(nil)
		if tt.ok && (err != nil || string(resp.Body) != "body") {
			t.Errorf("%d-byte block, limit %d: got %+v, %v; want the body", len(block), tt.max, resp, err)
		}
		if !tt.ok && !errors.Is(err, ErrProtocol) {
			t.Errorf("%d-byte block, limit %d: got error %v, want ErrProtocol", len(block), tt.max, err)
		}
	}
}

func TestReadResponse(t *testing.T) {
	stdout := "Content-Type: text/plain\r\n\r\nhello"
	tests := []struct {
		name    string
		stream  []byte
		wantErr error
	}{
		{"complete", slices.Concat(encodeRecord(typeStdout, 1, stdout, 3), endRequestRecord(0, 0)), nil},
		{"empty", nil, ErrProtocol},
		{"truncated header", encodeRecord(typeStdout, 1, stdout, 0)[:5], ErrProtocol},
		{"truncated content", encodeRecord(typeStdout, 1, stdout, 0)[:12], ErrProtocol},
		{"truncated padding", encodeRecord(typeStdout, 1, stdout, 5)[:8+len(stdout)+2], ErrProtocol},
		{"truncated end", endRequestRecord(0, 0)[:12], ErrProtocol},
		{"short end", encodeRecord(typeEndRequest, 1, "\x00\x00\x00\x00\x00", 0), ErrProtocol},
		{"unexpected type", encodeRecord(typeStdin, 1, "", 0), ErrProtocol},
		{"management record", encodeRecord(11, 0, "\x01\x00\x00\x00\x00\x00\x00\x00", 0), ErrProtocol},
		{"overloaded", endRequestRecord(0, statusOverloaded), ErrUnavailable},
		{"unknown status", endRequestRecord(0, 4), ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := readFrom(tt.stream, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(resp.Body) != "hello" {
				t.Errorf("got body %q, want %q", resp.Body, "hello")
			}
		})
	}
}

// countingWriter counts what it is given and keeps nothing.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// TestResponseMemoryIsBounded has a server print 50 MiB on STDOUT and 50
// MiB on STDERR, interleaved, and checks that the client's allocations stay
// far below that: memory must not depend on what a script prints.
func TestResponseMemoryIsBounded(t *testing.T) {
	const (
		total  = 50 << 20
		header = "Content-Type: text/plain\r\n\r\n"
		chunk  = 65528 // what php-fpm puts in a full record
	)
	// Both streams come from fixed buffers, so that the server side, in
	// this process too, allocates next to nothing.
	pattern := bytes.Repeat([]byte("0123456789abcdef"), chunk/16+1)[:chunk]
	stdoutRec := encodeRecord(typeStdout, requestID, string(pattern), 0)
	stderrRec := encodeRecord(typeStderr, requestID, string(pattern), 0)
	srv := serveFake(t, func(conn net.Conn, r *bufio.Reader) {
		if _, err := decodeRequest(r); err != nil {
			return
		}
		conn.Write(encodeRecord(typeStdout, requestID, header, 0))
		var rec [headerLen]byte
		for sent := 0; sent < total; sent += chunk {
			n := min(chunk, total-sent)
			for _, full := range [][]byte{stdoutRec, stderrRec} {
				if n == chunk {
					conn.Write(full)
					continue
				}
				copy(rec[:], full[:headerLen])
				binary.BigEndian.PutUint16(rec[4:], uint16(n))
				conn.Write(rec[:])
				conn.Write(full[headerLen : headerLen+n])
			}
		}
		conn.Write(endRequestRecord(0, 0))
	})
	c := newClient(t, srv.addr, Options{})
	var stderr countingWriter
	req := &Request{Params: typicalParams(), Stderr: &stderr}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := c.Do(t.Context(), req)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("reading 100 MiB of output allocated %d KiB, want under 1 MiB", grown>>10)
	} else {
		t.Logf("reading 100 MiB of output allocated %d KiB", grown>>10)
	}
	if resp.BodySize != total || len(resp.Body) != defaultMaxBodyKept || !bytes.Equal(resp.Body, pattern[:defaultMaxBodyKept]) {
		t.Errorf("got %d body bytes kept of %d; want the first %d of %d", len(resp.Body), resp.BodySize, defaultMaxBodyKept, total)
	}
	if stderr.n != total {
		t.Errorf("Stderr got %d bytes, want %d", stderr.n, total)
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

// splitStreams is an independent reading of a response: the STDOUT and
// STDERR contents up to END_REQUEST, or ok false if there is none.
func splitStreams(data []byte) (stdout, stderr []byte, ok bool) {
	r := bytes.NewReader(data)
	for {
		rec, err := readRecord(r)
		if err != nil {
			return nil, nil, false
		}
		switch rec.typ {
		case typeStdout:
			stdout = append(stdout, rec.content...)
		case typeStderr:
			stderr = append(stderr, rec.content...)
		case typeEndRequest:
			return stdout, stderr, true
		}
	}
}

// bodyOf returns what follows the header block in stdout.
func bodyOf(stdout []byte) []byte {
	for line := 0; ; {
		i := bytes.IndexByte(stdout[line:], '\n')
		if i < 0 {
			return nil
		}
		if i == 0 || i == 1 && stdout[line] == '\r' {
			return stdout[line+i+1:]
		}
		line += i + 1
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add(phpResponse())
	f.Add(endRequestRecord(0, statusRequestComplete))
	f.Add(endRequestRecord(0, statusOverloaded))
	f.Add(slices.Concat(encodeRecord(typeStdout, requestID, "Status: 404 Not Found\nX: y\n\n", 0), endRequestRecord(3, 0)))
	f.Add([]byte("\x01\x06\x00\x01\x00\x05\x03\x00Stat"))
	f.Add(stdoutResponse("X-A: 1\r\n\r\n"+strings.Repeat("body", 10), 5))
	const maxHeader, maxBody = 256, 16
	f.Fuzz(func(t *testing.T, data []byte) {
		var stderr bytes.Buffer
		resp, err := newResponseReader(bytes.NewReader(data), maxHeader, maxBody).read(&stderr)
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
		stdout, wantStderr, ok := splitStreams(data)
		if !ok {
			t.Fatal("a response without END_REQUEST was accepted")
		}
		body := bodyOf(stdout)
		if !bytes.Equal(resp.Body, body[:min(len(body), maxBody)]) || resp.BodySize != int64(len(body)) {
			t.Fatalf("got body %q of %d bytes, want the start of %q", resp.Body, resp.BodySize, body)
		}
		if !bytes.Equal(stderr.Bytes(), wantStderr) {
			t.Fatalf("Stderr got %q, want %q", stderr.Bytes(), wantStderr)
		}
		if len(stdout)-len(body) > maxHeader {
			t.Fatalf("a %d-byte header block passed a %d-byte limit", len(stdout)-len(body), maxHeader)
		}
	})
}

func BenchmarkParseResponse(b *testing.B) {
	stream := phpResponse()
	r := bytes.NewReader(stream)
	rr := newResponseReader(r, defaultMaxHeaderBytes, defaultMaxBodyKept)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		r.Reset(stream)
		rr.r.Reset(r)
		resp, err := rr.read(io.Discard)
		if err != nil || resp.Status != 200 || len(resp.Body) == 0 {
			b.Fatalf("got %+v, %v", resp, err)
		}
	}
}
