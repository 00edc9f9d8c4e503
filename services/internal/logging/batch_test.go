package logging

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// recorder is a writer that records each Write as one chunk.
type recorder struct {
	mu     sync.Mutex
	chunks []string
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.chunks = append(r.chunks, string(p))
	return len(p), nil
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.chunks...)
}

// The tests that depend on the interval run in a synctest bubble, whose
// clock moves only when every goroutine of the test waits: a batch is
// written exactly when its interval is over, without waiting for it.

func TestBatchWritesLinesTogetherAfterTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		b := NewBatch(&rec, 50*time.Millisecond)
		defer b.Close()
		log := zerolog.New(b)
		for i := range 100 {
			log.Info().Int("n", i).Msg("job succeeded")
		}
		time.Sleep(50*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if got := rec.get(); len(got) != 0 {
			t.Fatalf("written before the interval: %d chunks", len(got))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		got := rec.get()
		if len(got) != 1 {
			t.Fatalf("got %d writes at the interval, want the 100 lines in one", len(got))
		}
		if n := strings.Count(got[0], "\n"); n != 100 {
			t.Errorf("the write holds %d lines, want 100", n)
		}
	})
}

func TestBatchWritesErrorsAtOnce(t *testing.T) {
	var rec recorder
	b := NewBatch(&rec, time.Hour)
	defer b.Close()
	log := zerolog.New(b)
	log.Info().Msg("first")
	log.Error().Msg("failed")
	got := rec.get()
	if len(got) != 1 || !strings.Contains(got[0], "first") || !strings.Contains(got[0], "failed") {
		t.Fatalf("after an error line: %q, want both lines in one write, in order", got)
	}
}

func TestBatchWritesAFullBatchAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		b := NewBatch(&rec, time.Hour)
		defer b.Close()
		line := bytes.Repeat([]byte("x"), 1023)
		line = append(line, '\n')
		for range batchLimit / len(line) {
			b.Write(line)
		}
		synctest.Wait() // the writing goroutine is done with what it was handed; the clock has not moved
		if got := rec.get(); len(got) != 1 || len(got[0]) != batchLimit {
			t.Fatalf("got %d writes, want one of %d bytes", len(got), batchLimit)
		}
	})
}

func TestBatchCloseFlushesAndPassesLaterWritesThrough(t *testing.T) {
	var rec recorder
	b := NewBatch(&rec, time.Hour)
	b.Write([]byte("a\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("b\n"))
	if got := rec.get(); strings.Join(got, "|") != "a\n|b\n" {
		t.Fatalf("got %q, want the held line on Close, then the next one at once", got)
	}
}

func TestBatchReportsAWriteError(t *testing.T) {
	rec := recorder{err: errors.New("disk full")}
	b := NewBatch(&rec, time.Hour)
	defer b.Close()
	b.Write([]byte("a\n"))
	if err := b.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush = %v, want the writer's error", err)
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	if _, err := b.Write([]byte("b\n")); err != nil {
		t.Fatalf("Write after a reported error = %v", err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := rec.get(); len(got) != 1 || got[0] != "b\n" {
		t.Fatalf("got %q, want only the line after the failure", got)
	}
}

// blocked is a writer whose writes wait until it is released. It says on
// writing when the first write began.
type blocked struct {
	writing chan struct{}
	once    sync.Once
	release chan struct{}
	recorder
}

func (w *blocked) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.writing) })
	<-w.release
	return w.recorder.Write(p)
}

func TestBatchASlowWriterDoesNotHoldUpLogging(t *testing.T) {
	w := &blocked{writing: make(chan struct{}), release: make(chan struct{})}
	b := NewBatch(w, time.Millisecond)
	log := zerolog.New(b)
	log.Info().Msg("first")
	select {
	case <-w.writing: // handed over; its write now waits
	case <-time.After(5 * time.Second):
		t.Fatal("the first line was not handed over")
	}
	logged := make(chan struct{})
	go func() {
		for range 1000 {
			log.Info().Msg("later")
		}
		close(logged)
	}()
	select {
	case <-logged:
	case <-time.After(5 * time.Second):
		t.Fatal("logging waited for a blocked write")
	}
	close(w.release)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(w.get(), "")
	if !strings.HasPrefix(all, `{"level":"info","message":"first"}`) || strings.Count(all, "later") != 1000 {
		t.Errorf("after the release: %d bytes, want the first line, then the 1000 others", len(all))
	}
}
