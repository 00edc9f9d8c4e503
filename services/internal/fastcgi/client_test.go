package fastcgi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestParseAddress(t *testing.T) {
	valid := []struct{ addr, network, address string }{
		{"unix:///run/php/fpm.sock", "unix", "/run/php/fpm.sock"},
		{"unix:///tmp/a b.sock", "unix", "/tmp/a b.sock"},
		{"tcp://127.0.0.1:9000", "tcp", "127.0.0.1:9000"},
		{"tcp://php-fpm:9000", "tcp", "php-fpm:9000"},
		{"tcp://[::1]:65535", "tcp", "[::1]:65535"},
	}
	for _, tt := range valid {
		network, address, err := ParseAddress(tt.addr)
		if err != nil || network != tt.network || address != tt.address {
			t.Errorf("ParseAddress(%q) = %q, %q, %v; want %q, %q, nil", tt.addr, network, address, err, tt.network, tt.address)
		}
	}
	for _, addr := range []string{
		"",
		"/run/php/fpm.sock",
		"unix://",
		"unix://run/php/fpm.sock",
		"unix:/run/php/fpm.sock",
		"tcp://127.0.0.1",
		"tcp://127.0.0.1:",
		"tcp://:9000",
		"tcp://host:0",
		"tcp://host:65536",
		"tcp://host:fcgi",
		"tcp://host:9000/path",
		"tcp://::1:9000",
		"http://127.0.0.1:9000",
		"udp://127.0.0.1:9000",
		"TCP://127.0.0.1:9000",
		"127.0.0.1:9000",
	} {
		_, _, err := ParseAddress(addr)
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(addr)) {
			t.Errorf("ParseAddress(%q): got error %v, want one naming the address", addr, err)
		}
		if _, err := NewClient(addr, Options{}); err == nil {
			t.Errorf("NewClient(%q) succeeded", addr)
		}
	}
}

func TestNewClientOptions(t *testing.T) {
	const addr = "unix:///run/php/fpm.sock"
	c, err := NewClient(addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{IdleConnTimeout: 2 * time.Second, MaxBodyKept: 4096, MaxHeaderBytes: 64 << 10}
	if c.opts != want || c.idle != nil || c.flags != 0 {
		t.Errorf("zero Options gave %+v, keep-alive %v, flags %d; want %+v, no keep-alive, no flags", c.opts, c.idle != nil, c.flags, want)
	}
	set := Options{MaxIdleConns: 3, IdleConnTimeout: time.Minute, MaxBodyKept: 10, MaxHeaderBytes: 100}
	if c, err = NewClient(addr, set); err != nil {
		t.Fatal(err)
	}
	if c.opts != set || c.idle == nil || c.idle.max != 3 || c.idle.timeout != time.Minute || c.flags != flagKeepConn {
		t.Errorf("Options %+v gave %+v, flags %d", set, c.opts, c.flags)
	}
	for _, opts := range []Options{
		{MaxIdleConns: -1},
		{IdleConnTimeout: -time.Second},
		{MaxBodyKept: -1},
		{MaxHeaderBytes: -1},
	} {
		if _, err := NewClient(addr, opts); err == nil {
			t.Errorf("NewClient with %+v succeeded", opts)
		}
	}
}

// listen listens on network ("unix" or "tcp") and returns the listener and
// its address in the form NewClient takes.
func listen(t testing.TB, network string) (net.Listener, string) {
	var (
		ln  net.Listener
		err error
	)
	switch network {
	case "unix":
		ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "fpm.sock"))
	default:
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, network + "://" + ln.Addr().String()
}

// newClient returns a client for addr, failing the test if that errs, and
// closes its idle connections when the test ends.
func newClient(t testing.TB, addr string, opts Options) *Client {
	c, err := NewClient(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// serveFCGI runs net/http/fcgi with h on network and returns a client for it.
func serveFCGI(t testing.TB, network string, h http.Handler, opts Options) *Client {
	ln, addr := listen(t, network)
	go fcgi.Serve(ln, h)
	return newClient(t, addr, opts)
}

// keepAliveModes are the two ways a client gets its connections; every
// behaviour of Do must hold in both.
var keepAliveModes = []struct {
	name string
	opts Options
}{
	{"new connections", Options{}},
	{"kept connections", Options{MaxIdleConns: 2, IdleConnTimeout: time.Minute}},
}

// cgiParams returns the parameters net/http/fcgi needs plus extra.
func cgiParams(method, uri string, extra ...Param) []Param {
	return append([]Param{
		{"REQUEST_METHOD", method},
		{"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REQUEST_URI", uri},
	}, extra...)
}

// testHandler serves the requests of TestDoFCGI.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-Request-Id"))
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("Content-Type", "application/json")
	})
	mux.HandleFunc("/params", func(w http.ResponseWriter, r *http.Request) {
		env := fcgi.ProcessEnv(r)
		fmt.Fprintf(w, "%s %s %s %s %s", r.Method, r.URL.RawQuery, r.Header.Get("X-Job-Id"),
			env["SCRIPT_FILENAME"], env["FPMQ_QUEUE"])
	})
	mux.HandleFunc("/hash-body", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d %d %x", r.ContentLength, n, h.Sum(nil))
	})
	mux.HandleFunc("/hash-param", func(w http.ResponseWriter, r *http.Request) {
		big := fcgi.ProcessEnv(r)["BIG"]
		fmt.Fprintf(w, "%d %x", len(big), sha256.Sum256([]byte(big)))
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16))
	})
	return mux
}

// checkBody checks that resp kept the start of body, up to keep bytes, and
// counted all of it.
func checkBody(t *testing.T, resp *Response, body string, keep int) {
	t.Helper()
	if want := body[:min(len(body), keep)]; string(resp.Body) != want || resp.BodySize != int64(len(body)) {
		t.Errorf("got body %.100q (%d bytes kept of %d), want %.100q (%d bytes kept of %d)",
			resp.Body, len(resp.Body), resp.BodySize, want, len(want), len(body))
	}
}

func TestDoFCGI(t *testing.T) {
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = byte(i * 31)
	}
	bodySum := sha256.Sum256(body)
	big := strings.Repeat("0123456789", 6<<10)
	bigSum := sha256.Sum256([]byte(big))

	tests := []struct {
		name     string
		req      Request
		status   int
		header   http.Header // expected values of these keys only
		body     string
		inStderr string
	}{
		{name: "200 without explicit status",
			req:    Request{Params: cgiParams("GET", "/hello")},
			status: 200, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, body: "hello"},
		{name: "404",
			req:    Request{Params: cgiParams("GET", "/status/404")},
			status: 404},
		{name: "503",
			req:    Request{Params: cgiParams("GET", "/status/503")},
			status: 503},
		{name: "headers",
			req:    Request{Params: cgiParams("GET", "/headers", Param{"HTTP_X_REQUEST_ID", "r-17"})},
			status: 200,
			header: http.Header{"X-Echo": {"r-17"}, "Set-Cookie": {"a=1", "b=2"}, "Content-Type": {"application/json"}}},
		{name: "params",
			req: Request{Params: cgiParams("PUT", "/params?a=1",
				Param{"QUERY_STRING", "a=1"},
				Param{"HTTP_X_JOB_ID", "42"},
				Param{"SCRIPT_FILENAME", "/srv/app/job.php"},
				Param{"FPMQ_QUEUE", "emails"})},
			status: 200, body: "PUT a=1 42 /srv/app/job.php emails"},
		{name: "200 KiB body",
			req: Request{
				Params: cgiParams("POST", "/hash-body", Param{"CONTENT_LENGTH", strconv.Itoa(len(body))}),
				Body:   body,
			},
			status: 200, body: fmt.Sprintf("%d %d %x", len(body), len(body), bodySum)},
		{name: "60 KiB param",
			req:    Request{Params: cgiParams("GET", "/hash-param", Param{"BIG", big})},
			status: 200, body: fmt.Sprintf("%d %x", len(big), bigSum)},
		{name: "1 MiB response",
			req:    Request{Params: cgiParams("GET", "/large")},
			status: 200, body: strings.Repeat("0123456789abcdef", 1<<16)},
		{name: "stderr for missing REQUEST_METHOD",
			req:    Request{Params: []Param{{"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_URI", "/hello"}}},
			status: 500, inStderr: "REQUEST_METHOD"},
	}
	for _, network := range []string{"unix", "tcp"} {
		for _, mode := range keepAliveModes {
			t.Run(network+"/"+mode.name, func(t *testing.T) {
				c := serveFCGI(t, network, testHandler(), mode.opts)
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						var stderr bytes.Buffer
						req := tt.req
						req.Stderr = &stderr
						resp, err := c.Do(t.Context(), &req)
						if err != nil {
							t.Fatal(err)
						}
						if resp.Status != tt.status {
							t.Errorf("got status %d, want %d (body %q, stderr %q)", resp.Status, tt.status, resp.Body, stderr.Bytes())
						}
						if resp.Header.Get("Status") != "" {
							t.Errorf("Status left in header %q", resp.Header)
						}
						for key, want := range tt.header {
							if got := resp.Header[key]; !slices.Equal(got, want) {
								t.Errorf("got header %s %q, want %q", key, got, want)
							}
						}
						if tt.body != "" {
							checkBody(t, resp, tt.body, 4096)
						}
						if !strings.Contains(stderr.String(), tt.inStderr) || tt.inStderr == "" && stderr.Len() > 0 {
							t.Errorf("got stderr %q, want it to contain %q", stderr.Bytes(), tt.inStderr)
						}
					})
				}
			})
		}
	}
}

func TestDoConcurrent(t *testing.T) {
	for _, mode := range keepAliveModes {
		t.Run(mode.name, func(t *testing.T) {
			c := serveFCGI(t, "unix", testHandler(), mode.opts)
			var wg sync.WaitGroup
			for i := range 32 {
				wg.Go(func() {
					for j := range 10 {
						body := fmt.Appendf(nil, "request %d.%d", i, j)
						resp, err := c.Do(t.Context(), &Request{
							Params: cgiParams("POST", "/hash-body", Param{"CONTENT_LENGTH", strconv.Itoa(len(body))}),
							Body:   body,
						})
						if err != nil {
							t.Error(err)
							return
						}
						sum := sha256.Sum256(body)
						if want := fmt.Sprintf("%d %d %x", len(body), len(body), sum); string(resp.Body) != want {
							t.Errorf("got body %q, want %q", resp.Body, want)
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// fakeServer is a FastCGI server that tests script, on a unix socket.
type fakeServer struct {
	addr     string
	accepted atomic.Int64 // connections
}

// serveFake runs handle for every connection and returns the server. It
// exists because net/http/fcgi cannot be made to misbehave.
func serveFake(t *testing.T, handle func(conn net.Conn, r *bufio.Reader)) *fakeServer {
	return serveFakeOn(t, "unix", handle)
}

// serveFakeOn is serveFake on network ("unix" or "tcp").
func serveFakeOn(t *testing.T, network string, handle func(conn net.Conn, r *bufio.Reader)) *fakeServer {
	ln, addr := listen(t, network)
	srv := &fakeServer{addr: addr}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			srv.accepted.Add(1)
			wg.Go(func() {
				defer conn.Close()
				handle(conn, bufio.NewReader(conn))
			})
		}
	})
	return srv
}

// cannedServer reads one request per connection, reports it on the returned
// channel and answers with reply. A nil reply means never answering: the
// server then waits for the client to hang up.
func cannedServer(t *testing.T, reply []byte) (*fakeServer, <-chan fakeRequest) {
	requests := make(chan fakeRequest, 10)
	srv := serveFake(t, func(conn net.Conn, r *bufio.Reader) {
		req, err := decodeRequest(r)
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		requests <- req
		if reply == nil {
			io.Copy(io.Discard, r)
			return
		}
		conn.Write(reply)
	})
	return srv, requests
}

func TestDoFake(t *testing.T) {
	stdout := func(s string) []byte { return encodeRecord(typeStdout, requestID, s, -len(s)&7) }
	tests := []struct {
		name    string
		reply   []byte
		wantErr error
	}{
		{"overloaded", endRequestRecord(0, statusOverloaded), ErrUnavailable},
		{"cannot multiplex", endRequestRecord(0, statusCantMultiplex), ErrProtocol},
		{"unknown role", endRequestRecord(0, statusUnknownRole), ErrProtocol},
		{"closed before END_REQUEST", stdout("Status: 200\r\n\r\nhalf"), ErrProtocol},
		{"closed mid-record", stdout("Status: 200\r\n\r\nhalf")[:12], ErrProtocol},
		{"closed without a byte", []byte{}, ErrProtocol},
		{"wrong request id", slices.Concat(encodeRecord(typeStdout, 2, "X: y\r\n\r\n", 0), endRequestRecord(0, 0)), ErrProtocol},
		{"wrong version", slices.Concat([]byte{2}, endRequestRecord(0, 0)[1:]), ErrProtocol},
		{"unexpected record type", slices.Concat(encodeRecord(typeParams, requestID, "", 0), endRequestRecord(0, 0)), ErrProtocol},
		{"unterminated header block", slices.Concat(stdout("just text"), endRequestRecord(0, 0)), ErrProtocol},
		{"bad status", slices.Concat(stdout("Status: OK\r\n\r\n"), endRequestRecord(0, 0)), ErrProtocol},
	}
	for _, mode := range keepAliveModes {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				srv, requests := cannedServer(t, tt.reply)
				_, err := newClient(t, srv.addr, mode.opts).Do(t.Context(), &Request{Params: typicalParams()})
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				if other := map[error]error{ErrProtocol: ErrUnavailable, ErrUnavailable: ErrProtocol}[tt.wantErr]; errors.Is(err, other) {
					t.Errorf("error %v is also %v", err, other)
				}
				if got := <-requests; got.keep != (mode.opts.MaxIdleConns > 0) {
					t.Errorf("FCGI_KEEP_CONN %v with MaxIdleConns %d", got.keep, mode.opts.MaxIdleConns)
				}
			})
		}
	}
}

// failingWriter fails every write after the first.
type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes > 1 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestDoStderrApart(t *testing.T) {
	reply := slices.Concat(
		encodeRecord(typeStderr, requestID, "PHP Warning: first\n", 5),
		encodeRecord(typeStdout, requestID, "Content-type: text/html\r\n", 7),
		encodeRecord(typeStderr, requestID, "PHP Notice: second\n", 0),
		encodeRecord(typeStdout, requestID, "\r\n<p>", 3),
		encodeRecord(typeStdout, requestID, "", 0), // empty STDOUT record ends the stream
		encodeRecord(typeStderr, requestID, "", 0),
		endRequestRecord(3, statusRequestComplete),
	)
	want := &Response{
		Status:    200,
		Header:    http.Header{"Content-Type": {"text/html"}},
		Body:      []byte("<p>"),
		BodySize:  3,
		AppStatus: 3,
	}
	srv, requests := cannedServer(t, reply)
	c := newClient(t, srv.addr, Options{})
	for _, stderr := range []io.Writer{nil, &bytes.Buffer{}, &failingWriter{}} {
		sent := &Request{Params: typicalParams(), Body: []byte(`{"job":42,"ok":true}`), Stderr: stderr}
		resp, err := c.Do(t.Context(), sent)
		if err != nil {
			t.Fatalf("Stderr %T: %v", stderr, err)
		}
		if got := <-requests; !slices.Equal(got.params, sent.Params) || !bytes.Equal(got.body, sent.Body) {
			t.Errorf("server read params %q, body %q; want exactly what was sent", got.params, got.body)
		}
		if !responsesEqual(resp, want) {
			t.Errorf("Stderr %T: got response %+v, want %+v", stderr, resp, want)
		}
		if b, ok := stderr.(*bytes.Buffer); ok && b.String() != "PHP Warning: first\nPHP Notice: second\n" {
			t.Errorf("Stderr got %q, want both messages in order", b)
		}
		if w, ok := stderr.(*failingWriter); ok && w.writes != 2 {
			t.Errorf("a failing Stderr got %d writes, want none after the failing one", w.writes)
		}
	}
}

func TestDoEmptyStdout(t *testing.T) {
	srv, _ := cannedServer(t, endRequestRecord(0, statusRequestComplete))
	resp, err := newClient(t, srv.addr, Options{}).Do(t.Context(), &Request{Params: typicalParams()})
	if err != nil {
		t.Fatal(err)
	}
	if !responsesEqual(resp, &Response{Status: 200, Header: http.Header{}}) {
		t.Errorf("got %+v, want an empty 200", resp)
	}
}

// TestDoLargeBodyEarlyAnswer covers a script that writes a lot before reading
// its STDIN; writing the whole request before reading would deadlock.
func TestDoLargeBodyEarlyAnswer(t *testing.T) {
	page := strings.Repeat("x", 4<<20)
	for _, mode := range keepAliveModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := serveFake(t, func(conn net.Conn, r *bufio.Reader) {
				if _, err := readRecord(r); err != nil {
					return
				}
				for {
					rec, err := readRecord(r)
					if err != nil {
						return
					}
					if len(rec.content) == 0 {
						break
					}
				}
				w := bufio.NewWriter(conn)
				w.Write(encodeRecord(typeStdout, requestID, "\r\n", 0))
				for chunk := range slices.Chunk([]byte(page), maxRecord) {
					w.Write(encodeRecord(typeStdout, requestID, string(chunk), 0))
				}
				w.Write(endRequestRecord(0, 0))
				w.Flush()
				io.Copy(io.Discard, r) // Only now read STDIN, like a late php://input.
			})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c := newClient(t, srv.addr, mode.opts)
			resp, err := c.Do(ctx, &Request{Params: typicalParams(), Body: make([]byte, 4<<20)})
			if err != nil {
				t.Fatal(err)
			}
			checkBody(t, resp, page, 4096)
		})
	}
}

func TestDoDeadline(t *testing.T) {
	for _, mode := range keepAliveModes {
		t.Run(mode.name, func(t *testing.T) {
			srv, requests := cannedServer(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := newClient(t, srv.addr, mode.opts).Do(ctx, &Request{Params: typicalParams()})
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Do returned after %v with a 100ms timeout", elapsed)
			}
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrProtocol) || errors.Is(err, ErrUnavailable) {
				t.Errorf("got error %v, want only context.DeadlineExceeded", err)
			}
			<-requests // The server read the whole request.
		})
	}
}

func TestDoCancel(t *testing.T) {
	for _, mode := range keepAliveModes {
		t.Run(mode.name, func(t *testing.T) {
			srv, requests := cannedServer(t, nil)
			// The timeout only keeps a broken cancellation from hanging the test.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			go func() {
				<-requests // The request is in; the server now hangs.
				cancel()
			}()
			start := time.Now()
			_, err := newClient(t, srv.addr, mode.opts).Do(ctx, &Request{Params: typicalParams()})
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Do returned %v after the request reached the server; cancellation did not stop it", elapsed)
			}
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrProtocol) || errors.Is(err, ErrUnavailable) {
				t.Errorf("got error %v, want only context.Canceled", err)
			}
		})
	}
}

func TestDoUnavailable(t *testing.T) {
	missing := "unix://" + filepath.Join(t.TempDir(), "missing.sock")
	ln, closed := listen(t, "tcp")
	ln.Close()
	tests := []struct {
		addr  string
		cause error
	}{
		{missing, syscall.ENOENT},
		{closed, syscall.ECONNREFUSED},
	}
	for _, mode := range keepAliveModes {
		for _, tt := range tests {
			_, err := newClient(t, tt.addr, mode.opts).Do(t.Context(), &Request{Params: typicalParams()})
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, tt.cause) {
				t.Errorf("%s: got error %v, want ErrUnavailable and %v", tt.addr, err, tt.cause)
			}
			if err != nil && !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("error %q does not name %s", err, tt.addr)
			}
		}
	}
}

func TestDoCancelledBeforeDial(t *testing.T) {
	for _, mode := range keepAliveModes {
		srv, _ := cannedServer(t, endRequestRecord(0, statusRequestComplete))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := newClient(t, srv.addr, mode.opts).Do(ctx, &Request{Params: typicalParams()})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: got error %v, want context.Canceled and ErrUnavailable", mode.name, err)
		}
		if n := srv.accepted.Load(); n != 0 {
			t.Errorf("%s: %d connections made with a cancelled context", mode.name, n)
		}
	}
}

func BenchmarkDoUnix(b *testing.B) {
	c := serveFCGI(b, "unix", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	}), Options{})
	req := &Request{Params: typicalParams(), Body: []byte(`{"job":42,"ok":true}`)}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(b.Context(), req)
		if err != nil || string(resp.Body) != "ok" {
			b.Fatalf("got %v, %v", resp, err)
		}
	}
}
