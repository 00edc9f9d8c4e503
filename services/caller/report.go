package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
)

// reporter prints " [x] Message sent: LABEL" for each confirmed job, in
// input order: a job settled before an earlier one that is still unsettled
// (to be published again) is held until that one is settled.
//
// Lines to anything but a terminal are buffered, one write per buffer
// rather than per job, and flushed whenever the caller is about to wait
// (flush) and at the end (finish): a line is late by at most the time the
// caller keeps publishing without waiting.
type reporter struct {
	w         io.Writer
	buf       *bufio.Writer // w's buffer; nil when w is written directly
	before    func()        // if set, called before each line is printed
	labels    []string      // how each job is named, in input order
	ids       []string      // each job's message id, in input order, once it has one; nil: not printed (--ids)
	confirmed int           // jobs settled as confirmed, printed or held
	next      int           // index of the first job neither printed nor settled as failed
	held      map[int]bool  // jobs settled after next, by index: true if confirmed
}

// settle records that the broker confirmed the job at index i (ok) or that
// it never will. It must be called at most once per job.
func (r *reporter) settle(i int, ok bool) {
	if ok {
		r.confirmed++
	}
	if i != r.next {
		r.held[i] = ok
		return
	}
	for {
		if ok {
			r.print(r.next)
		}
		r.next++
		var found bool
		if ok, found = r.held[r.next]; !found {
			return
		}
		delete(r.held, r.next)
	}
}

// buffer makes r write through a buffer of size bytes.
func (r *reporter) buffer(size int) {
	r.buf = bufio.NewWriterSize(r.w, size)
	r.w = r.buf
}

// flush writes out the buffered lines. A failed write is not the run's
// failure: the jobs were confirmed all the same.
func (r *reporter) flush() {
	if r.buf != nil {
		r.buf.Flush()
	}
}

// finish prints the confirmed jobs still held: the jobs before them will
// not be confirmed now. It flushes what is buffered.
func (r *reporter) finish() {
	for _, i := range slices.Sorted(maps.Keys(r.held)) {
		if r.held[i] {
			r.print(i)
		}
	}
	clear(r.held)
	r.flush()
}

// print prints the line of the job at index i.
func (r *reporter) print(i int) {
	if r.before != nil {
		r.before()
	}
	if r.ids != nil {
		fmt.Fprintf(r.w, " [x] Message sent: %s (message id %s)\n", r.labels[i], r.ids[i])
		return
	}
	fmt.Fprintf(r.w, " [x] Message sent: %s\n", r.labels[i])
}
