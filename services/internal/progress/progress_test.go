package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(1000, 0)
	l := &Line{w: &out, start: clock, now: func() time.Time { return clock }}
	step := func(d time.Duration, n int, want string) {
		t.Helper()
		clock = clock.Add(d)
		out.Reset()
		l.Update("%d done", n)
		if out.String() != want {
			t.Errorf("at %s: wrote %q, want %q", clock.Sub(time.Unix(1000, 0)), out.String(), want)
		}
	}
	step(0, 1, "")                              // a short run shows nothing
	step(After-time.Millisecond, 2, "")         // still short
	step(time.Millisecond, 3, "\r\033[K3 done") // shown from After on
	step(Every-time.Millisecond, 4, "")         // not rewritten more often than Every
	step(time.Millisecond, 5, "\r\033[K5 done")

	out.Reset()
	l.Clear()
	if out.String() != "\r\033[K" {
		t.Errorf("Clear wrote %q, want the line erased", out.String())
	}
	out.Reset()
	l.Clear()
	if out.Len() != 0 {
		t.Errorf("Clear of an erased line wrote %q", out.String())
	}
	step(Every, 6, "\r\033[K6 done")
}

func TestNilLineDoesNothing(t *testing.T) {
	var l *Line
	l.Update("%d", 1)
	l.Clear()
}

func TestOnTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, w := range map[string]any{"file": f, "buffer": &bytes.Buffer{}} {
		if IsTerminal(w) {
			t.Errorf("a %s is a terminal", name)
		}
	}
	if l := OnTerminal(f); l != nil {
		t.Errorf("OnTerminal(a file) = %v, want nil: no progress where output is not a terminal", l)
	}
}
