package logging

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// batchLimit is how many bytes a Batch holds before it writes them out
// without waiting for its interval.
const batchLimit = 64 << 10

// Batch is a writer that collects log lines and writes them to the
// underlying writer together: every interval, as soon as it holds 64 KiB,
// at once for a line at error level or above (zerolog's LevelWriter), and on
// Flush and Close. Each Write must be whole lines, as zerolog's are; a
// batch then holds whole lines only.
//
// Under a container engine each write to stdout or stderr costs a wake-up
// of the engine's log path (the container's shim, then dockerd), about
// 100 µs of CPU whether the line is 200 bytes or 64 KiB and whatever the
// logging driver (BENCHMARKS.md, "the container engine's log handling").
// A daemon that logs one line per job at thousands of jobs a second pays
// that per job unless its lines travel in batches.
//
// Its methods are safe for concurrent use. A write error of the underlying
// writer is returned by the next Write, Flush or Close; the lines of the
// failed batch are dropped, as a failed unbuffered write would drop them.
type Batch struct {
	w        io.Writer
	interval time.Duration

	mu     sync.Mutex
	buf    []byte
	err    error
	timer  *time.Timer // pending flush of buf; nil when buf is empty or closed
	closed bool
}

// NewBatch returns a Batch writing to w at most interval after a line
// arrived. interval must be positive.
func NewBatch(w io.Writer, interval time.Duration) *Batch {
	return &Batch{w: w, interval: interval}
}

// Write adds p to the batch, or writes it at once after Close.
func (b *Batch) Write(p []byte) (int, error) {
	return b.write(p, false)
}

// WriteLevel adds p to the batch and writes the batch at once if level is
// error or above: a failure reaches the log without delay.
func (b *Batch) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	return b.write(p, level >= zerolog.ErrorLevel && level != zerolog.NoLevel)
}

func (b *Batch) write(p []byte, now bool) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.takeErr(); err != nil {
		return 0, err
	}
	if b.closed {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if now || len(b.buf) >= batchLimit {
		return len(p), b.flushLocked()
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.interval, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.timer = nil
			if err := b.flushLocked(); err != nil && b.err == nil {
				b.err = err
			}
		})
	}
	return len(p), nil
}

// Flush writes what the batch holds.
func (b *Batch) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// Close writes what the batch holds; later writes go straight through.
func (b *Batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

// flushLocked writes buf and stops the pending flush; b.mu is held.
func (b *Batch) flushLocked() error {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if err := b.takeErr(); err != nil {
		b.buf = b.buf[:0]
		return err
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *Batch) takeErr() error {
	err := b.err
	b.err = nil
	return err
}
