package dispatch

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

// answer is what one attempt brought back from php-fpm: the facts decide
// reads, gathered by Handle once the attempt ended.
type answer struct {
	// resp is php-fpm's response; nil when err is not.
	resp *fastcgi.Response
	// err is the request's error: nil when php-fpm answered in full.
	err error
	// refusal is php-fpm's own refusal to run the script, from its stderr
	// (phpfpm.Refused), and refused whether there was one. Only an answer
	// without err can be a refusal.
	refusal string
	refused bool
	// fatal is the PHP fatal error the script died of, from its stderr, or
	// "".
	fatal string
	// overran says that the run outlasted the attempt's deadline
	// (Config.Timeout); abandoned, that the daemon stopped waiting for
	// php-fpm to end it (Config.RunHold), and the script may still run.
	overran, abandoned bool
}

// verdictKind is what Handle does with a delivery once its attempt ended.
type verdictKind int

// The verdict kinds.
const (
	// succeed acks the delivery: the job is done.
	succeed verdictKind = iota + 1
	// failAttempt counts a failed attempt: a retry copy, or the dead-letter
	// queue with outcome.ReasonExhausted once the attempts are spent.
	failAttempt
	// deadLetterNow sends the job to the dead-letter queue with the
	// verdict's reason, whatever attempts are left.
	deadLetterNow
	// requeuePoolUnavailable puts the job back with no attempt counted:
	// the pool could not take it, or php-fpm refused to run the script.
	// The verdict's err wraps outcome.ErrPoolUnavailable.
	requeuePoolUnavailable
)

// verdict is what php-fpm's answer means for the job.
type verdict struct {
	kind verdictKind
	// reason is the dead-letter reason of deadLetterNow (an outcome.Reason
	// constant), else "".
	reason string
	// err is the failure to record in the result and in a copy's headers;
	// nil for succeed.
	err error
	// refusal is php-fpm's refusal of the script, for the operator's log
	// line, when that is why the job was requeued; else "".
	refusal string
	// retry says that the worker asked for its next attempt in retryIn
	// (Fpmq-Retry-In, whole seconds) instead of after the route's
	// backoff; only a failAttempt has it.
	retry   bool
	retryIn time.Duration
	// maxAttempts is the number of attempts the worker asked the job to
	// get in all (Fpmq-Max-Attempts), 0 if it did not; only a failAttempt
	// has it.
	maxAttempts int
	// malformed lists the answer's values that were ignored, for the log.
	malformed []malformedValue
}

// rules are what decide needs of the route besides the answer.
type rules struct {
	// script names the worker script in the error of a refusal.
	script string
	// delayMax bounds Fpmq-Retry-In (DELAY_MAX).
	delayMax time.Duration
}

// The headers of the worker's answer that settle its job otherwise than its
// status (the README's "What the worker sees"), canonical as
// fastcgi.Response.Header keys them.
const (
	// answerRetryIn: "N", whole seconds from 0 to DELAY_MAX: a failed
	// attempt, whatever the status; the next one comes N seconds later.
	answerRetryIn = "Fpmq-Retry-In"
	// answerFail: "TEXT": dead-lettered at once, whatever the status, with
	// outcome.ReasonFailed and TEXT as the last error.
	answerFail = "Fpmq-Fail"
	// answerMaxAttempts: "N", 1 to outcome.MaxJobAttempts: the job gets N
	// attempts in all from now on, instead of the route's MAX_ATTEMPTS.
	answerMaxAttempts = "Fpmq-Max-Attempts"
)

// directives are what the worker asked for in its answer's headers.
type directives struct {
	retry       bool // Fpmq-Retry-In was given, as retryIn
	retryIn     time.Duration
	fail        bool // Fpmq-Fail was given, with failText
	failText    string
	maxAttempts int // Fpmq-Max-Attempts, 0 when not given
}

// malformedValue is a value of the worker's answer that was ignored: the
// header, its value, and what it should have been.
type malformedValue struct {
	header, value, want string
}

// readDirectives reads the Fpmq-* headers of h, a response header with
// canonical keys; of a header given twice, the last value counts, as
// PHP's header() replaces an earlier one. A number that is not one, or out
// of its range (Fpmq-Retry-In beyond delayMax), is left out and listed in
// malformed.
func readDirectives(h http.Header, delayMax time.Duration) (directives, []malformedValue) {
	var d directives
	var bad []malformedValue
	if v, ok := lastValue(h, answerRetryIn); ok {
		most := int(delayMax / time.Second)
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 && n <= most {
			d.retry, d.retryIn = true, time.Duration(n)*time.Second
		} else {
			bad = append(bad, malformedValue{answerRetryIn, v, fmt.Sprintf("whole seconds from 0 to %d (DELAY_MAX)", most)})
		}
	}
	if v, ok := lastValue(h, answerMaxAttempts); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 1 && n <= outcome.MaxJobAttempts {
			d.maxAttempts = n
		} else {
			bad = append(bad, malformedValue{answerMaxAttempts, v, fmt.Sprintf("a whole number from 1 to %d", outcome.MaxJobAttempts)})
		}
	}
	if v, ok := lastValue(h, answerFail); ok {
		d.fail, d.failText = true, strings.TrimSpace(v)
		if d.failText == "" {
			d.failText = "the worker answered " + answerFail + " with no reason"
		}
	}
	return d, bad
}

// lastValue returns the last value of the header name in h, and whether
// there is one.
func lastValue(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// decide turns a's facts into a verdict. It does no I/O of its own: it
// calls poolDown, which may ping the pool, only when a's request broke in a
// way that could be php-fpm going away (a restart kills its children
// mid-request) rather than the job's own fault. It reads a.resp whenever
// a.err is nil.
//
// The order of the cases matters: a refusal is php-fpm's, not the script's
// answer; the script's Fpmq-Fail ends the job whatever else it says; a
// clean 2xx stands, even after the deadline (the job ran once, whole); a
// run the daemon stopped waiting for is a failed attempt; a pool that is
// down is not the job's fault; a PHP fatal error fails the attempt
// whatever the status says (with display_errors on, or after output, PHP
// still answers 200); a 4xx is the worker refusing the job for good. Then
// Fpmq-Retry-In makes any of those but Fpmq-Fail a failed attempt with its
// wait, and Fpmq-Max-Attempts rides on a failed attempt. A failure past
// the deadline says so.
func decide(a answer, r rules, poolDown func() bool) verdict {
	var asked directives
	var malformed []malformedValue
	if a.err == nil && !a.refused {
		asked, malformed = readDirectives(a.resp.Header, r.delayMax)
	}
	v := decideAnswer(a, asked, r.script, poolDown)
	if asked.retry && !asked.fail {
		v = retryVerdict(v, asked.retryIn)
	}
	if v.kind == failAttempt {
		v.maxAttempts = asked.maxAttempts
	}
	v.malformed = malformed
	if a.overran && v.kind == failAttempt && !a.abandoned {
		v.err = fmt.Errorf("ran past REQUEST_TIMEOUT until php-fpm ended it: %w", v.err)
	}
	return v
}

// retryVerdict returns v, a verdict of a script that answered
// Fpmq-Retry-In, as the failed attempt it is, whose next attempt comes in
// wait: its error is v's, if any, and says that the worker asked.
func retryVerdict(v verdict, wait time.Duration) verdict {
	asked := fmt.Sprintf("the worker asked to run the job again in %s (%s)", wait, answerRetryIn)
	err := errors.New(asked)
	if v.err != nil {
		err = fmt.Errorf("%w; %s", v.err, asked)
	}
	return verdict{kind: failAttempt, err: err, retry: true, retryIn: wait}
}

func decideAnswer(a answer, asked directives, script string, poolDown func() bool) verdict {
	switch {
	case a.refused:
		// php-fpm answered itself: no PHP ran, and no job can run until
		// the pool or the daemon's SCRIPT_FILENAME is fixed.
		return verdict{
			kind:    requeuePoolUnavailable,
			err:     fmt.Errorf("%w: php-fpm refused to run %s (status %d): %s", outcome.ErrPoolUnavailable, script, a.resp.Status, a.refusal),
			refusal: a.refusal,
		}
	case asked.fail:
		return verdict{kind: deadLetterNow, reason: outcome.ReasonFailed, err: errors.New(asked.failText)}
	case a.err == nil && a.fatal == "" && a.resp.Status >= 200 && a.resp.Status < 300:
		return verdict{kind: succeed}
	case a.abandoned:
		return verdict{kind: failAttempt, err: fmt.Errorf("php-fpm did not end the run within REQUEST_TIMEOUT and the longest the daemon may hold the job; it may still run: %w", a.err)}
	case errors.Is(a.err, fastcgi.ErrUnavailable) || (a.err != nil && poolDown()):
		return verdict{kind: requeuePoolUnavailable, err: fmt.Errorf("%w: %w", outcome.ErrPoolUnavailable, a.err)}
	case a.fatal != "" && a.err != nil:
		// The request broke after the fatal error (a shutdown function
		// that ran past the deadline, a child killed): no status came.
		return verdict{kind: failAttempt, err: fmt.Errorf("PHP fatal error, then %w: %s", a.err, a.fatal)}
	case a.fatal != "":
		return verdict{kind: failAttempt, err: fmt.Errorf("PHP fatal error (status %d): %s", a.resp.Status, a.fatal)}
	case a.err == nil && a.resp.Status >= 400 && a.resp.Status < 500:
		return verdict{kind: deadLetterNow, reason: outcome.ReasonRejected, err: fmt.Errorf("worker answered status %d", a.resp.Status)}
	case a.err == nil:
		return verdict{kind: failAttempt, err: fmt.Errorf("worker answered status %d", a.resp.Status)}
	default:
		return verdict{kind: failAttempt, err: a.err}
	}
}
