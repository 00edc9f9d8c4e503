// Package testutil holds what the tests of several packages share: a
// certificate authority that issues TLS certificates into the test's
// temporary directory, and a wait for a condition that polls rather than
// sleeps a guessed time.
package testutil

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually checks its condition: short, as
// most conditions hold within milliseconds and are cheap to check.
const pollInterval = time.Millisecond

// Eventually calls cond, at once and then every millisecond, until it
// returns true. If it has not within timeout, Eventually fails the test
// with "waited TIMEOUT for WHAT" and stops it (t.Fatalf), so it must be
// called from the test's goroutine. what names the awaited state ("the
// idle connection closed").
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// Clock is a time a test sets and moves: pass its Now where code takes a
// func() time.Time.
type Clock struct{ T time.Time }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.T }
