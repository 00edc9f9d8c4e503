package dispatch

import (
	"crypto/sha256"
	"encoding/hex"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fpmq/fpmq/services/internal/outcome"
)

// identityHashPrefix starts the identity of a message that has neither a
// message id nor a correlation id.
const identityHashPrefix = "sha256:"

// identity returns the job's identity, which the worker sees as
// HTTP_X_MESSAGE_ID: m's message id; else its correlation id; else
// "sha256:" and the lowercase hex SHA-256 of its body (71 bytes). Handle
// writes it as the message id of every copy it makes (retry, delay, dead
// letter, requeue), so that it never changes once assigned. Two jobs with
// the same body and no ids share one identity.
func identity(m amqp.Delivery) string {
	if m.MessageId != "" {
		return m.MessageId
	}
	if m.CorrelationId != "" {
		return m.CorrelationId
	}
	sum := sha256.Sum256(m.Body)
	return identityHashPrefix + hex.EncodeToString(sum[:])
}

// ownLimit returns the job's own limit of attempts from its
// outcome.HeaderMaxAttempts header, and whether it has a valid one: an
// integer of any AMQP width from 1 to outcome.MaxJobAttempts. present says
// whether the header is there at all, valid or not.
func ownLimit(h amqp.Table) (limit int, ok, present bool) {
	v, present := h[outcome.HeaderMaxAttempts]
	if !present {
		return 0, false, false
	}
	n, isInt := outcome.Int(v)
	if !isInt || n < 1 || n > outcome.MaxJobAttempts {
		return 0, false, true
	}
	return int(n), true, true
}

// limitAfter returns the number of attempts a job gets in all once the
// worker answered attempt with Fpmq-Max-Attempts asked (asked > 0; 0 keeps
// current): asked, but never fewer than the attempts already run, plus the
// one the worker asks for with Fpmq-Retry-In (retry).
func limitAfter(current, attempt, asked int, retry bool) int {
	if asked < 1 {
		return current
	}
	floor := attempt
	if retry {
		floor++
	}
	return max(asked, floor)
}
