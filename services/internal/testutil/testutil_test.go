package testutil

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestEventuallyPolls(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, "the third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want until it held (3)", calls)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyFailsWithWhat(t *testing.T) {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		Eventually(r, 30*time.Millisecond, "a state that never comes", func() bool { return false })
	}()
	<-done
	if want := "waited 30ms for a state that never comes"; r.msg != want {
		t.Errorf("failed with %q, want %q", r.msg, want)
	}
	if elapsed := time.Since(start); elapsed < 30*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", elapsed)
	}
}
