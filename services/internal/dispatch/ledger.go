package dispatch

import (
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

// ledger remembers, by the job's identity (see identity), the attempts that ran to an end whose
// delivery could not be settled because its channel closed meanwhile: a
// broker's consumer acknowledgement timeout, a lost connection. The broker
// then delivers the job again, flagged redelivered, with the attempt
// number of the attempt that ran; the ledger lets the daemon settle that
// redelivery by what the attempt did instead of running the job again: an
// ack if the job succeeded or its retry or dead-letter copy was published,
// the failure path (a retry copy, or the dead-letter queue) if the attempt
// failed and nothing was published for it. So the attempt counts once and
// the job runs once.
//
// It only helps when the redelivery comes back to this daemon; its entries
// last ledgerTTL, at most ledgerMax of them. It keeps nothing for a job
// whose identity is the hash of its body (no message id, no correlation
// id): two jobs published with the same body would share it, and the
// redelivery of one that never ran would be acked for the other. Such a
// job runs again instead, as at-least-once delivery allows. A failed attempt's entry keeps
// what the worker asked (outcome.Result's RetryIn and MaxAttempts), so that
// the redelivery settles as the answer said.
type ledger struct {
	mu      sync.Mutex
	entries map[string]ledgerEntry
}

// ledgerEntry is what an attempt did whose delivery was not settled.
type ledgerEntry struct {
	// done means nothing is left to do but ack the redelivery.
	done bool
	// res is the failed attempt, when not done; deadLetter says that it
	// was to be dead-lettered at once (res.Reason says why), else it is
	// settled as a failed attempt (a retry, or attempts-exhausted).
	res        outcome.Result
	deadLetter bool
	at         time.Time
}

const (
	ledgerTTL = time.Hour
	ledgerMax = 10000
)

// record notes what the attempt of m did, under m's identity.
func (l *ledger) record(m amqp.Delivery, e ledgerEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = make(map[string]ledgerEntry)
	}
	id := identity(m)
	if !unique(id) {
		return
	}
	now := time.Now()
	if len(l.entries) >= ledgerMax {
		for id, old := range l.entries {
			if now.Sub(old.at) > ledgerTTL || len(l.entries) >= ledgerMax {
				delete(l.entries, id)
			}
		}
	}
	e.at = now
	l.entries[id] = e
}

// unique says whether identity id names one job: false for the hash of a
// body, which several jobs may share.
func unique(id string) bool { return !strings.HasPrefix(id, identityHashPrefix) }

// take returns and forgets the entry of a redelivered m, if there is one
// not older than ledgerTTL.
func (l *ledger) take(m amqp.Delivery) (ledgerEntry, bool) {
	if !m.Redelivered {
		return ledgerEntry{}, false
	}
	id := identity(m)
	if !unique(id) {
		return ledgerEntry{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	if !ok {
		return ledgerEntry{}, false
	}
	delete(l.entries, id)
	if time.Since(e.at) > ledgerTTL {
		return ledgerEntry{}, false
	}
	return e, true
}

// settlement wraps a delivery's Acknowledger and keeps the error of the
// last ack, nack or reject, so that Handle learns whether the delivery was
// settled.
type settlement struct {
	amqp.Acknowledger
	err  error
	used bool
}

func (s *settlement) Ack(tag uint64, multiple bool) error {
	s.used, s.err = true, s.Acknowledger.Ack(tag, multiple)
	return s.err
}

func (s *settlement) Nack(tag uint64, multiple, requeue bool) error {
	s.used, s.err = true, s.Acknowledger.Nack(tag, multiple, requeue)
	return s.err
}

func (s *settlement) Reject(tag uint64, requeue bool) error {
	s.used, s.err = true, s.Acknowledger.Reject(tag, requeue)
	return s.err
}
