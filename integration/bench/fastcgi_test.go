package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// servePool serves handler over FastCGI on a unix socket, as php-fpm would,
// until the test ends, and returns the socket's path.
func servePool(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pool.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fcgi.Serve(l, handler) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("fcgi.Serve: %v", err)
		}
	})
	return path
}

func TestFastCGIRequest(t *testing.T) {
	socket := servePool(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != "POST" || r.Header.Get("X-Attempt") != "1":
			w.WriteHeader(http.StatusBadRequest)
		case string(body) == "number=404":
			w.WriteHeader(http.StatusNotFound)
		default:
			fmt.Fprintf(w, "got %s", body)
		}
	})
	long := strings.Repeat("x", 300) // a length that takes four bytes
	params := func(form []byte) []param {
		return []param{
			{"REQUEST_METHOD", "POST"},
			{"SERVER_PROTOCOL", "HTTP/1.1"},
			{"CONTENT_TYPE", "application/x-www-form-urlencoded"},
			{"CONTENT_LENGTH", fmt.Sprint(len(form))},
			{"HTTP_X_ATTEMPT", "1"},
			{"HTTP_X_LONG", long},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		form   string
		status int
	}{
		{"number=1", 200},
		{"number=404", 404},
		{"number=" + strings.Repeat("9", 70000), 200}, // STDIN over two records
	} {
		status, _, err := fastcgiRequest(ctx, socket, params([]byte(tc.form)), []byte(tc.form))
		if err != nil || status != tc.status {
			t.Errorf("request with %.20q: status %d, %v; want %d", tc.form, status, err, tc.status)
		}
	}
}

func TestFastCGIRequestFailsWithoutAPool(t *testing.T) {
	_, _, err := fastcgiRequest(context.Background(), filepath.Join(t.TempDir(), "none.sock"), nil, nil)
	if err == nil {
		t.Error("a request to a missing socket succeeded")
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		stdout string
		want   int
		ok     bool
	}{
		{"Content-type: text/html\r\n\r\nhello", 200, true},
		{"Status: 404 Not Found\r\nContent-type: text/html\r\n\r\n", 404, true},
		{"Status: 500\r\n\r\n", 500, true},
		{"", 200, true},
		{"Status: oops\r\n\r\n", 0, false},
	} {
		got, err := parseStatus([]byte(tc.stdout))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("parseStatus(%q) = %d, %v; want %d, ok %v", tc.stdout, got, err, tc.want, tc.ok)
		}
	}
}

func TestReadResponseRejectsAnIncompleteRequest(t *testing.T) {
	// END_REQUEST with protocol status 1, FCGI_CANT_MPX_CONN.
	end := appendRecord(nil, fcgiEndRequest, []byte{0, 0, 0, 0, 1, 0, 0, 0})
	if _, _, err := readResponse(bufioReader(end)); !errors.Is(err, errFastCGI) {
		t.Errorf("readResponse = %v, want a protocol error", err)
	}
	if _, _, err := readResponse(bufioReader(appendRecord(nil, fcgiStdout, []byte("x")))); !errors.Is(err, errFastCGI) {
		t.Errorf("readResponse without END_REQUEST = %v, want a protocol error", err)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
