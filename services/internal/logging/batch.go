package logging

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// batchLimit is how many bytes a Batch holds before it hands them to its
// writer without waiting for its interval.
const batchLimit = 64 << 10

// pendingChunks is how many batches may wait for the underlying writer
// before Write blocks: the log is then far behind, and the daemon waits
// for it as it would without batches.
const pendingChunks = 16

// Batch is a writer that collects log lines and writes them to the
// underlying writer together: every interval, as soon as it holds 64 KiB,
// at once for a line at error level or above (zerolog's LevelWriter, which
// waits for the write), and on Flush and Close. Each Write must be whole lines, as zerolog's are; a
// batch then holds whole lines only, and batches are written in order.
//
// Under a container engine each write to stdout or stderr costs a wake-up
// of the engine's log path (the container's shim, then dockerd), about
// 100 µs of CPU whether the line is 200 bytes or 64 KiB and whatever the
// logging driver (BENCHMARKS.md, "The deployment's defaults"). A daemon
// that logs one line per job at thousands of jobs a second pays that per
// job unless its lines travel in batches.
//
// A goroutine of its own writes the batches, so that a write the engine
// is slow to take never holds up the goroutines that log. Its methods are
// safe for concurrent use. A write error of the underlying writer is
// returned by the next Write, Flush or Close; the lines of the failed batch
// are dropped, as a failed unbuffered write would drop them.
type Batch struct {
	w        io.Writer
	interval time.Duration
	chunks   chan chunk
	done     chan struct{} // closed when the writing goroutine ends

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // pending hand-over of buf; nil when buf is empty
	closed bool

	// errMu guards err apart from mu: the writing goroutine records an
	// error while a logging goroutine may hold mu, waiting for it.
	errMu sync.Mutex
	err   error
}

// chunk is a batch handed to the writing goroutine; if written is not
// nil, the goroutine sends it the write's error.
type chunk struct {
	b       []byte
	written chan error
}

// NewBatch returns a Batch writing to w at most interval after a line
// arrived. interval must be positive. Close ends its goroutine.
func NewBatch(w io.Writer, interval time.Duration) *Batch {
	b := &Batch{w: w, interval: interval, chunks: make(chan chunk, pendingChunks), done: make(chan struct{})}
	go b.writeChunks()
	return b
}

func (b *Batch) writeChunks() {
	defer close(b.done)
	for c := range b.chunks {
		var err error
		if len(c.b) > 0 {
			_, err = b.w.Write(c.b)
		}
		if c.written != nil {
			c.written <- err
			continue
		}
		if err != nil {
			b.errMu.Lock()
			if b.err == nil {
				b.err = err
			}
			b.errMu.Unlock()
		}
	}
}

// Write adds p to the batch, or writes it at once after Close.
func (b *Batch) Write(p []byte) (int, error) {
	return b.write(p, false)
}

// WriteLevel adds p to the batch and, if level is error or above, writes
// the batch before it returns: a failure reaches the log without delay.
func (b *Batch) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	return b.write(p, level >= zerolog.ErrorLevel && level != zerolog.NoLevel)
}

func (b *Batch) write(p []byte, now bool) (int, error) {
	b.mu.Lock()
	if err := b.takeErr(); err != nil {
		b.mu.Unlock()
		return 0, err
	}
	if b.closed {
		b.mu.Unlock()
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	switch {
	case now:
		// Written before the caller goes on, as without batches: a crash
		// right after an error line still leaves it in the log.
		written := make(chan error, 1)
		b.handOverLocked(written)
		b.mu.Unlock()
		return len(p), <-written
	case len(b.buf) >= batchLimit:
		b.handOverLocked(nil)
	case b.timer == nil:
		b.timer = time.AfterFunc(b.interval, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if !b.closed {
				b.handOverLocked(nil)
			}
		})
	}
	b.mu.Unlock()
	return len(p), nil
}

// handOverLocked hands buf to the writing goroutine, in order; b.mu is
// held and b is not closed. It blocks only while pendingChunks batches
// wait for the underlying writer.
func (b *Batch) handOverLocked(written chan error) {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 && written == nil {
		return
	}
	b.chunks <- chunk{b: b.buf, written: written}
	b.buf = nil
}

// Flush writes what the batch holds, and returns once it is written.
func (b *Batch) Flush() error {
	b.mu.Lock()
	if err := b.takeErr(); err != nil {
		b.mu.Unlock()
		return err
	}
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	written := make(chan error, 1)
	b.handOverLocked(written)
	b.mu.Unlock()
	return <-written
}

// Close writes what the batch holds and ends its goroutine; later writes
// go straight through.
func (b *Batch) Close() error {
	err := b.Flush()
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.chunks)
	}
	b.mu.Unlock()
	<-b.done
	return err
}

// takeErr returns the error of an earlier batch's write, once.
func (b *Batch) takeErr() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	err := b.err
	b.err = nil
	return err
}
