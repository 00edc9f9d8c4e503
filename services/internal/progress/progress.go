// Package progress shows how far a long command has got: one line on a
// terminal, rewritten in place, and nothing at all where the output is not
// a terminal (a pipe, a file, a container without a TTY), so that logs and
// captured output stay clean.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

const (
	// After is how long a run lasts before its progress shows: short runs
	// show none.
	After = 500 * time.Millisecond
	// Every is the shortest time between two rewrites of the line.
	Every = 200 * time.Millisecond
)

// Line is one line of progress on a terminal. Its methods are safe for
// concurrent use, and do nothing on a nil *Line: a command gets one from
// OnTerminal and calls it without checking where its output goes.
type Line struct {
	w     io.Writer
	start time.Time
	now   func() time.Time // time.Now; a fake clock in tests

	mu    sync.Mutex
	last  time.Time // of the last rewrite
	shown bool      // the line holds progress that Clear must erase
}

// New returns a Line that writes to w, whatever w is, counting the run's
// time from now.
func New(w io.Writer) *Line {
	return &Line{w: w, start: time.Now(), now: time.Now}
}

// OnTerminal returns a Line on w if w is a terminal, else nil.
func OnTerminal(w io.Writer) *Line {
	if !IsTerminal(w) {
		return nil
	}
	return New(w)
}

// IsTerminal reports whether f is a terminal: an *os.File, or anything
// else with a file descriptor, open on a TTY.
func IsTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(fd.Fd()) || isatty.IsCygwinTerminal(fd.Fd()))
}

// Update rewrites the line with the formatted text, unless the run is
// younger than After or the line was rewritten less than Every ago. The
// text must fit on one line of the terminal.
func (l *Line) Update(format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.start) < After || now.Sub(l.last) < Every {
		return
	}
	l.last, l.shown = now, true
	fmt.Fprintf(l.w, "\r\033[K"+format, args...)
}

// Clear erases the line if it shows progress, so that other output, or the
// shell's prompt, starts on a clean line. The next Update writes it again.
func (l *Line) Clear() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		fmt.Fprint(l.w, "\r\033[K")
		l.shown = false
	}
}
