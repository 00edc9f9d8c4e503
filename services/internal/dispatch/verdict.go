package dispatch

import (
	"errors"
	"fmt"

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
}

// decide turns a's facts into a verdict. It does no I/O of its own: it
// calls poolDown, which may ping the pool, only when a's request broke in a
// way that could be php-fpm going away (a restart kills its children
// mid-request) rather than the job's own fault. script names the worker
// script in the error of a refusal. It reads a.resp whenever a.err is nil.
//
// The order of the cases matters: a refusal is php-fpm's, not the script's
// answer; a clean 2xx stands, even after the deadline (the job ran once,
// whole); a run the daemon stopped waiting for is a failed attempt; a pool
// that is down is not the job's fault; a PHP fatal error fails the attempt
// whatever the status says (with display_errors on, or after output, PHP
// still answers 200); a 4xx is the worker refusing the job for good. A
// failure past the deadline says so.
func decide(a answer, script string, poolDown func() bool) verdict {
	v := decideAnswer(a, script, poolDown)
	if a.overran && v.kind == failAttempt && !a.abandoned {
		v.err = fmt.Errorf("ran past REQUEST_TIMEOUT until php-fpm ended it: %w", v.err)
	}
	return v
}

func decideAnswer(a answer, script string, poolDown func() bool) verdict {
	switch {
	case a.refused:
		// php-fpm answered itself: no PHP ran, and no job can run until
		// the pool or the daemon's SCRIPT_FILENAME is fixed.
		return verdict{
			kind:    requeuePoolUnavailable,
			err:     fmt.Errorf("%w: php-fpm refused to run %s (status %d): %s", outcome.ErrPoolUnavailable, script, a.resp.Status, a.refusal),
			refusal: a.refusal,
		}
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
