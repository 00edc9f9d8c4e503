package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/phpfpm"
)

// fakePool serves php-fpm's ping and JSON status pages over FastCGI on a
// unix socket, with children as its process count.
func fakePool(t *testing.T, children int) *phpfpm.Pool {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "pool.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go fcgi.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ping":
			fmt.Fprint(w, "pong")
		case "/status":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"pool":"commands","process manager":"static","idle processes":%d,"active processes":0,"total processes":%d}`, children, children)
		default:
			http.NotFound(w, r)
		}
	}))
	client, err := fastcgi.NewClient("unix://"+sock, fastcgi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &phpfpm.Pool{Client: client, PingPath: "/ping", StatusPath: "/status"}
}

func TestCheckPoolWarnsOfNoSpareChildForKeptConnections(t *testing.T) {
	const warning = "has none to spare"
	for _, tc := range []struct {
		keepAlive bool
		children  int
		warn      bool
	}{
		{true, 5, true},
		{true, 6, false},
		{false, 5, false},
	} {
		var buf bytes.Buffer
		cfg := config{KeepAlive: tc.keepAlive, Concurrency: 5, ScriptFilename: "/app/worker.php"}
		checkPool(context.Background(), fakePool(t, tc.children), cfg, zerolog.New(&buf))
		if got := strings.Contains(buf.String(), warning); got != tc.warn {
			t.Errorf("keep-alive %v, %d children for CONCURRENCY 5: warned %v, want %v; log:\n%s", tc.keepAlive, tc.children, got, tc.warn, buf.String())
		}
		if !strings.Contains(buf.String(), "php-fpm pool answers") {
			t.Errorf("no ping answer logged:\n%s", buf.String())
		}
	}
}
