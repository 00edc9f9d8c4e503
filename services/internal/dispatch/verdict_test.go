package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/fastcgi"
	"github.com/fpmq/fpmq/services/internal/outcome"
)

const (
	refusalText = "Primary script unknown"
	fatalText   = "PHP Fatal error:  Uncaught Error: Call to undefined function nope() in /app/worker.php:3"
)

// Request errors as Dispatcher.run returns them.
var (
	errBroken      = fmt.Errorf("fastcgi request: %w", io.ErrUnexpectedEOF)
	errTimedOut    = fmt.Errorf("fastcgi request: %w", context.DeadlineExceeded)
	errUnavailable = fmt.Errorf("fastcgi request: %w", fastcgi.ErrUnavailable)
)

func answered(code int) *fastcgi.Response { return &fastcgi.Response{Status: code} }

// answeredWith is an answer with status code and the headers of kv, name
// then value, a name given twice keeping both values in order.
func answeredWith(code int, kv ...string) *fastcgi.Response {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &fastcgi.Response{Status: code, Header: h}
}

// testRules are a route's rules for decide: DELAY_MAX an hour.
var testRules = rules{script: "/app/worker.php", delayMax: time.Hour}

// The texts of the verdicts of Fpmq-Retry-In.
const (
	askedIn2s = "the worker asked to run the job again in 2s (Fpmq-Retry-In)"
	askedIn0s = "the worker asked to run the job again in 0s (Fpmq-Retry-In)"
)

// decideCases are the facts of an attempt that TestDecide hands to decide,
// one case or more for each of its branches, and what it must make of them.
var decideCases = []struct {
	name     string
	a        answer
	poolDown bool // what the ping would say, if made
	kind     verdictKind
	reason   string
	err      string  // the verdict's error text exactly; "" for none
	is       []error // what that error must wrap
	pings    int     // how many times poolDown must be asked
	// What the worker asked with its answer's headers: the wait before
	// its next attempt (retry), its limit of attempts, and how many values
	// were malformed.
	retry       bool
	retryIn     time.Duration
	maxAttempts int
	malformed   int
}{
	// php-fpm's own refusal comes first, even during shutdown.
	{name: "refused 404", a: answer{resp: answered(404), refused: true, refusal: refusalText},
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: php-fpm refused to run /app/worker.php (status 404): " + refusalText, is: []error{outcome.ErrPoolUnavailable}},
	{name: "refused 403 past the deadline", a: answer{resp: answered(403), refused: true, refusal: "Access denied", overran: true},
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: php-fpm refused to run /app/worker.php (status 403): Access denied", is: []error{outcome.ErrPoolUnavailable}},

	// A clean 2xx succeeds, even past the deadline: the job ran, whole.
	{name: "200", a: answer{resp: answered(200)}, kind: succeed},
	{name: "204", a: answer{resp: answered(204)}, kind: succeed},
	{name: "299", a: answer{resp: answered(299)}, kind: succeed},
	{name: "200 past the deadline", a: answer{resp: answered(200), overran: true}, kind: succeed},

	// A run past the deadline that php-fpm ended is a failed attempt that
	// says so; one the daemon stopped waiting for fails, pinging nothing.
	{name: "abandoned run", a: answer{err: errTimedOut, overran: true, abandoned: true},
		kind: failAttempt, err: "php-fpm did not end the run within REQUEST_TIMEOUT and the longest the daemon may hold the job; it may still run: " + errTimedOut.Error(), is: []error{context.DeadlineExceeded}},
	{name: "500 past the deadline", a: answer{resp: answered(500), overran: true},
		kind: failAttempt, err: "ran past REQUEST_TIMEOUT until php-fpm ended it: worker answered status 500"},
	{name: "killed past the deadline, pool up", a: answer{err: errBroken, overran: true}, pings: 1,
		kind: failAttempt, err: "ran past REQUEST_TIMEOUT until php-fpm ended it: " + errBroken.Error(), is: []error{io.ErrUnexpectedEOF}},
	{name: "fatal 200 past the deadline", a: answer{resp: answered(200), fatal: fatalText, overran: true},
		kind: failAttempt, err: "ran past REQUEST_TIMEOUT until php-fpm ended it: PHP fatal error (status 200): " + fatalText},
	{name: "4xx past the deadline", a: answer{resp: answered(422), overran: true},
		kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 422"},

	// The pool could not take the job, or went away mid-request.
	{name: "pool unavailable", a: answer{err: errUnavailable}, poolDown: false,
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: " + errUnavailable.Error(), is: []error{outcome.ErrPoolUnavailable, fastcgi.ErrUnavailable}},
	{name: "broken connection, pool down", a: answer{err: errBroken}, poolDown: true, pings: 1,
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: " + errBroken.Error(), is: []error{outcome.ErrPoolUnavailable, io.ErrUnexpectedEOF}},
	{name: "timeout, pool down", a: answer{err: errTimedOut}, poolDown: true, pings: 1,
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: " + errTimedOut.Error(), is: []error{outcome.ErrPoolUnavailable, context.DeadlineExceeded}},
	{name: "fatal then broken connection, pool down", a: answer{err: errBroken, fatal: fatalText}, poolDown: true, pings: 1,
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: " + errBroken.Error(), is: []error{outcome.ErrPoolUnavailable}},

	// The request broke on its own: a failed attempt.
	{name: "broken connection, pool up", a: answer{err: errBroken}, pings: 1,
		kind: failAttempt, err: errBroken.Error(), is: []error{io.ErrUnexpectedEOF}},
	{name: "timeout, pool up", a: answer{err: errTimedOut}, pings: 1,
		kind: failAttempt, err: errTimedOut.Error(), is: []error{context.DeadlineExceeded}},

	// A PHP fatal error fails the attempt whatever the status says.
	{name: "fatal with status 200", a: answer{resp: answered(200), fatal: fatalText},
		kind: failAttempt, err: "PHP fatal error (status 200): " + fatalText},
	{name: "fatal with status 500", a: answer{resp: answered(500), fatal: fatalText},
		kind: failAttempt, err: "PHP fatal error (status 500): " + fatalText},
	{name: "fatal with status 404, not a refusal", a: answer{resp: answered(404), fatal: fatalText},
		kind: failAttempt, err: "PHP fatal error (status 404): " + fatalText},

	// The worker's 4xx rejects the job for good.
	{name: "400", a: answer{resp: answered(400)}, kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 400"},
	{name: "404 of the script", a: answer{resp: answered(404)}, kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 404"},
	{name: "422", a: answer{resp: answered(422)}, kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 422"},
	{name: "499", a: answer{resp: answered(499)}, kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 499"},

	// Any other status is a failed attempt.
	{name: "500", a: answer{resp: answered(500)}, kind: failAttempt, err: "worker answered status 500"},
	{name: "503", a: answer{resp: answered(503)}, kind: failAttempt, err: "worker answered status 503"},
	{name: "199", a: answer{resp: answered(199)}, kind: failAttempt, err: "worker answered status 199"},
	{name: "300", a: answer{resp: answered(300)}, kind: failAttempt, err: "worker answered status 300"},
	{name: "399", a: answer{resp: answered(399)}, kind: failAttempt, err: "worker answered status 399"},

	// Fpmq-Fail dead-letters at once whatever else the answer says, with
	// its text exactly; only php-fpm's own refusal comes first.
	{name: "Fail with 200", a: answer{resp: answeredWith(200, "Fpmq-Fail", "no such user 42")},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "no such user 42"},
	{name: "Fail with 500", a: answer{resp: answeredWith(500, "Fpmq-Fail", "App\\Exception: gone")},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "App\\Exception: gone"},
	{name: "Fail with 422", a: answer{resp: answeredWith(422, "Fpmq-Fail", "bad input")},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "bad input"},
	{name: "Fail with a fatal error", a: answer{resp: answeredWith(500, "Fpmq-Fail", "given up"), fatal: fatalText},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "given up"},
	{name: "Fail past the deadline", a: answer{resp: answeredWith(200, "Fpmq-Fail", "too late"), overran: true},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "too late"},
	{name: "Fail without text", a: answer{resp: answeredWith(200, "Fpmq-Fail", "")},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "the worker answered Fpmq-Fail with no reason"},
	{name: "Fail wins over Retry-In and Max-Attempts", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "2", "Fpmq-Fail", "stop", "Fpmq-Max-Attempts", "9")},
		kind: deadLetterNow, reason: outcome.ReasonFailed, err: "stop"},
	{name: "Fail on php-fpm's refusal is php-fpm's", a: answer{resp: answeredWith(404, "Fpmq-Fail", "x"), refused: true, refusal: refusalText},
		kind: requeuePoolUnavailable, err: "php-fpm pool unavailable: php-fpm refused to run /app/worker.php (status 404): " + refusalText, is: []error{outcome.ErrPoolUnavailable}},

	// Fpmq-Retry-In makes any answer a failed attempt, with its wait.
	{name: "Retry-In with 200", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "2")},
		kind: failAttempt, err: askedIn2s, retry: true, retryIn: 2 * time.Second},
	{name: "Retry-In 0 with 204", a: answer{resp: answeredWith(204, "Fpmq-Retry-In", "0")},
		kind: failAttempt, err: askedIn0s, retry: true},
	{name: "Retry-In with 500", a: answer{resp: answeredWith(500, "Fpmq-Retry-In", "2")},
		kind: failAttempt, err: "worker answered status 500; " + askedIn2s, retry: true, retryIn: 2 * time.Second},
	{name: "Retry-In with 422 is not a rejection", a: answer{resp: answeredWith(422, "Fpmq-Retry-In", "2")},
		kind: failAttempt, err: "worker answered status 422; " + askedIn2s, retry: true, retryIn: 2 * time.Second},
	{name: "Retry-In with a fatal error", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "2"), fatal: fatalText},
		kind: failAttempt, err: "PHP fatal error (status 200): " + fatalText + "; " + askedIn2s, retry: true, retryIn: 2 * time.Second},
	{name: "Retry-In past the deadline", a: answer{resp: answeredWith(500, "Fpmq-Retry-In", "2"), overran: true},
		kind: failAttempt, err: "ran past REQUEST_TIMEOUT until php-fpm ended it: worker answered status 500; " + askedIn2s, retry: true, retryIn: 2 * time.Second},
	{name: "Retry-In of DELAY_MAX", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", " 3600 ")},
		kind: failAttempt, err: "the worker asked to run the job again in 1h0m0s (Fpmq-Retry-In)", retry: true, retryIn: time.Hour},
	{name: "Retry-In given twice: the last counts", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "5", "Fpmq-Retry-In", "2")},
		kind: failAttempt, err: askedIn2s, retry: true, retryIn: 2 * time.Second},
	{name: "Retry-In on a broken request: no answer to read", a: answer{err: errBroken}, pings: 1,
		kind: failAttempt, err: errBroken.Error()},

	// A malformed Retry-In is ignored: the answer stands as if it had none.
	{name: "Retry-In beyond DELAY_MAX", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "3601")}, kind: succeed, malformed: 1},
	{name: "Retry-In negative", a: answer{resp: answeredWith(500, "Fpmq-Retry-In", "-1")}, kind: failAttempt, err: "worker answered status 500", malformed: 1},
	{name: "Retry-In not a number", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "soon")}, kind: succeed, malformed: 1},
	{name: "Retry-In not whole", a: answer{resp: answeredWith(422, "Fpmq-Retry-In", "2.5")},
		kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 422", malformed: 1},
	{name: "Retry-In empty", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "")}, kind: succeed, malformed: 1},
	{name: "Retry-In huge", a: answer{resp: answeredWith(200, "Fpmq-Retry-In", "99999999999999999999")}, kind: succeed, malformed: 1},

	// Fpmq-Max-Attempts rides on a failed attempt, and only on one.
	{name: "Max-Attempts with 500", a: answer{resp: answeredWith(500, "Fpmq-Max-Attempts", "7")},
		kind: failAttempt, err: "worker answered status 500", maxAttempts: 7},
	{name: "Max-Attempts with Retry-In", a: answer{resp: answeredWith(200, "Fpmq-Max-Attempts", "7", "Fpmq-Retry-In", "2")},
		kind: failAttempt, err: askedIn2s, retry: true, retryIn: 2 * time.Second, maxAttempts: 7},
	{name: "Max-Attempts 1 with a fatal error", a: answer{resp: answeredWith(200, "Fpmq-Max-Attempts", "1"), fatal: fatalText},
		kind: failAttempt, err: "PHP fatal error (status 200): " + fatalText, maxAttempts: 1},
	{name: "Max-Attempts 1000", a: answer{resp: answeredWith(503, "Fpmq-Max-Attempts", "1000")},
		kind: failAttempt, err: "worker answered status 503", maxAttempts: 1000},
	{name: "Max-Attempts with 200", a: answer{resp: answeredWith(200, "Fpmq-Max-Attempts", "7")}, kind: succeed},
	{name: "Max-Attempts with 422", a: answer{resp: answeredWith(422, "Fpmq-Max-Attempts", "7")},
		kind: deadLetterNow, reason: outcome.ReasonRejected, err: "worker answered status 422"},
	{name: "Max-Attempts 0", a: answer{resp: answeredWith(500, "Fpmq-Max-Attempts", "0")}, kind: failAttempt, err: "worker answered status 500", malformed: 1},
	{name: "Max-Attempts 1001", a: answer{resp: answeredWith(500, "Fpmq-Max-Attempts", "1001")}, kind: failAttempt, err: "worker answered status 500", malformed: 1},
	{name: "Max-Attempts not a number", a: answer{resp: answeredWith(500, "Fpmq-Max-Attempts", "many")}, kind: failAttempt, err: "worker answered status 500", malformed: 1},
	{name: "both malformed", a: answer{resp: answeredWith(500, "Fpmq-Max-Attempts", "-3", "Fpmq-Retry-In", "1e3")}, kind: failAttempt, err: "worker answered status 500", malformed: 2},
}

// TestDecide goes through decideCases with no FastCGI server: what the
// verdict is, the error it records, and whether the pool was pinged to tell
// a broken request's cause.
func TestDecide(t *testing.T) {
	for _, tc := range decideCases {
		t.Run(tc.name, func(t *testing.T) {
			pings := 0
			v := decide(tc.a, testRules, func() bool { pings++; return tc.poolDown })
			if v.kind != tc.kind || v.reason != tc.reason {
				t.Errorf("verdict %d reason %q, want %d reason %q", v.kind, v.reason, tc.kind, tc.reason)
			}
			if tc.kind == succeed && v.err != nil {
				t.Errorf("success with error %v", v.err)
			}
			if tc.kind != succeed && v.err == nil {
				t.Error("failure without an error")
			}
			if tc.err != "" && (v.err == nil || v.err.Error() != tc.err) {
				t.Errorf("error %v, want %q", v.err, tc.err)
			}
			for _, target := range tc.is {
				if !errors.Is(v.err, target) {
					t.Errorf("error %v does not wrap %v", v.err, target)
				}
			}
			if pings != tc.pings {
				t.Errorf("pool pinged %d times, want %d", pings, tc.pings)
			}
			if want := tc.a.refusal; (tc.a.refused && v.refusal != want) || (!tc.a.refused && v.refusal != "") {
				t.Errorf("refusal %q, want %q", v.refusal, want)
			}
			if errors.Is(v.err, outcome.ErrPoolUnavailable) != (tc.kind == requeuePoolUnavailable) {
				t.Errorf("error %v: ErrPoolUnavailable must mark exactly the pool's requeues", v.err)
			}
			if v.retry != tc.retry || v.retryIn != tc.retryIn || v.maxAttempts != tc.maxAttempts {
				t.Errorf("asked: retry %v in %s, max attempts %d; want retry %v in %s, max attempts %d", v.retry, v.retryIn, v.maxAttempts, tc.retry, tc.retryIn, tc.maxAttempts)
			}
			if len(v.malformed) != tc.malformed {
				t.Errorf("malformed values %+v, want %d", v.malformed, tc.malformed)
			}
		})
	}
}

// TestDecideFatalAfterBrokenRequest: a PHP fatal error on stderr followed
// by a request that broke on its own (a shutdown function that outlives
// Timeout, a child killed) has no response to read a status from; it is a
// failed attempt that names both, retried as any other, never a panic.
func TestDecideFatalAfterBrokenRequest(t *testing.T) {
	a := answer{err: fmt.Errorf("fastcgi request: %w", fastcgi.ErrProtocol), fatal: fatalText}
	v := decide(a, testRules, func() bool { return false })
	if v.kind != failAttempt || !errors.Is(v.err, fastcgi.ErrProtocol) || !strings.Contains(v.err.Error(), fatalText) {
		t.Errorf("got %+v, want a failed attempt naming the broken request and the fatal error", v)
	}
}

// TestSettleVerdict checks that each verdict settles the delivery as its
// kind says, with no FastCGI server: the outcome, the copy, the ack or
// requeue, and the operator's log line for a refused script.
func TestSettleVerdict(t *testing.T) {
	tests := []struct {
		name    string
		v       verdict
		attempt int
		want    outcome.Outcome
		reason  string
		queue   string // where a copy goes, if anywhere
		settled string
	}{
		{"succeed", verdict{kind: succeed}, 1, outcome.Succeeded, "", "", "ack"},
		{"failed attempt", verdict{kind: failAttempt, err: errors.New("worker answered status 500")}, 1, outcome.Retried, "", "jobs.retry.1s", "ack"},
		{"last failed attempt", verdict{kind: failAttempt, err: errors.New("worker answered status 500")}, 3, outcome.DeadLettered, outcome.ReasonExhausted, "jobs.dead", "ack"},
		{"rejected", verdict{kind: deadLetterNow, reason: outcome.ReasonRejected, err: errors.New("worker answered status 422")}, 1, outcome.DeadLettered, outcome.ReasonRejected, "jobs.dead", "ack"},
		{"pool unavailable", verdict{kind: requeuePoolUnavailable, err: outcome.ErrPoolUnavailable}, 1, outcome.Requeued, "", "", "nack-requeue"},
		{"refused", verdict{kind: requeuePoolUnavailable, err: outcome.ErrPoolUnavailable, refusal: refusalText}, 1, outcome.Requeued, "", "", "nack-requeue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			d := New(nil, nil, Config{Script: "/app/worker.php", MaxAttempts: 3, Topology: topology}, zerolog.New(&log))
			m, ack := delivery(`{"number":1}`, nil)
			pub := &publisher{}
			res := outcome.Result{Attempt: tc.attempt, Ran: true, Status: 404}
			d.settleVerdict(context.Background(), m, pub, tc.v, &res)
			if res.Outcome != tc.want || res.Reason != tc.reason || !errors.Is(res.Err, tc.v.err) {
				t.Errorf("result %+v, want outcome %v reason %q error %v", res, tc.want, tc.reason, tc.v.err)
			}
			if len(ack.settled) != 1 || ack.settled[0] != tc.settled {
				t.Errorf("settled %v, want [%s]", ack.settled, tc.settled)
			}
			switch {
			case tc.queue == "" && len(pub.sent) != 0:
				t.Errorf("published %+v, want nothing", pub.sent)
			case tc.queue != "" && (len(pub.sent) != 1 || pub.sent[0].queue != tc.queue):
				t.Errorf("published %+v, want one copy to %s", pub.sent, tc.queue)
			}
			logged := strings.Contains(log.String(), `"php_fpm":"`+refusalText+`"`) && strings.Contains(log.String(), `"status":404`)
			if logged != (tc.v.refusal != "") {
				t.Errorf("refusal logged: %v, want %v:\n%s", logged, tc.v.refusal != "", log.String())
			}
		})
	}
}

// TestPostReading: only a multipart/form-data body, which PHP would parse
// into $_POST and $_FILES and take off php://input, turns PHP's reading of
// the body off; every other request turns it on again, whatever a request
// before it on the same php-fpm child set.
func TestPostReading(t *testing.T) {
	for ct, want := range map[string]string{
		"multipart/form-data; boundary=x":   "enable_post_data_reading=Off",
		" Multipart/Form-Data ;boundary=x":  "enable_post_data_reading=Off",
		"multipart/mixed; boundary=x":       "enable_post_data_reading=On",
		"application/x-www-form-urlencoded": "enable_post_data_reading=On",
		"application/json":                  "enable_post_data_reading=On",
		"":                                  "enable_post_data_reading=On",
	} {
		if p := postReading(ct); p.Name != "PHP_VALUE" || p.Value != want {
			t.Errorf("postReading(%q) = %+v, want PHP_VALUE %s", ct, p, want)
		}
	}
}
