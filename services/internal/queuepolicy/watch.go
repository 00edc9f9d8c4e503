package queuepolicy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/management"
	"github.com/fpmq/fpmq/services/internal/queuestat"
)

// Watcher checks the daemon's queues through the management API, at
// start and then every Every, and keeps the latest verdicts for the
// metrics. It logs what changed, once per change: an error for each queue
// on which what RabbitMQ applies is not what fpmq relies on, naming the
// policy in effect, what is missing and how to fix it; an info line when
// that queue is right again; a warning when the API does not answer.
type Watcher struct {
	// Client reads the API; nil means it is off, which Run says once.
	Client   *management.Client
	Topology broker.Topology
	// Every is the time between two checks; 0 checks once.
	Every time.Duration
	Log   zerolog.Logger

	mu        sync.Mutex
	verdicts  []Verdict         // nil until a check got an answer, and after one that did not
	logged    map[string]string // by queue: what was last logged of it, "" for nothing wrong
	problem   string            // the last failure of the API, as logged
	announced bool              // the first complete check found all well, and said so
}

// Last returns the verdicts of the latest check, one per queue of the
// topology (queuestat.Queues order), and whether it got an answer: nil
// and false before the first check and after one the API did not answer.
func (w *Watcher) Last() ([]Verdict, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdicts, w.verdicts != nil
}

// checkTimeout bounds one check: a few requests to the API.
const checkTimeout = 15 * time.Second

// Run checks until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	if w.Client == nil {
		w.Log.Warn().Msg("RABBITMQ_MANAGEMENT_URL is off: the daemon does not check that RabbitMQ's policies leave its queues as fpmq relies on (dead-lettering, no delivery limit on the dead-letter queue)")
		return
	}
	var tick <-chan time.Time
	if w.Every > 0 {
		t := time.NewTicker(w.Every)
		defer t.Stop()
		tick = t.C
	}
	for {
		checkCtx, cancel := context.WithTimeout(ctx, checkTimeout)
		w.Check(checkCtx)
		cancel()
		if tick == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// Check checks once, logs what changed and keeps the verdicts.
func (w *Watcher) Check(ctx context.Context) {
	verdicts, err := w.read(ctx)
	if ctx.Err() != nil && err != nil {
		return // the daemon is stopping
	}
	w.mu.Lock()
	w.verdicts = verdicts
	if w.logged == nil {
		w.logged = map[string]string{}
	}
	w.mu.Unlock()
	if err != nil {
		w.reportFailure(err)
		return
	}
	if w.problem != "" {
		w.Log.Info().Str("management_url", w.Client.URL()).Msg("RabbitMQ's management API answers again: checking the policies on the daemon's queues")
		w.problem = ""
	}
	ok := 0
	for _, v := range verdicts {
		if !v.Known() {
			continue
		}
		w.logChange(ctx, v)
		if v.OK() {
			ok++
		}
	}
	if !w.announced && ok == len(verdicts) {
		w.announced = true
		w.Log.Info().Int("queues", ok).Str("management_url", w.Client.URL()).Msg("what RabbitMQ applies to the daemon's queues is what fpmq relies on")
	}
}

// read asks the API for the broker's version and the vhost's queues, and
// returns the verdicts. It returns nil verdicts with an error.
func (w *Watcher) read(ctx context.Context) ([]Verdict, error) {
	version, err := w.Client.Version(ctx)
	if err != nil {
		return nil, err
	}
	qs, err := w.Client.Queues(ctx)
	if err != nil {
		return nil, err
	}
	return Check(w.Topology, Broker{Major: MajorVersion(version)}, qs), nil
}

// reportFailure logs a failure of the API once, until it changes.
func (w *Watcher) reportFailure(err error) {
	if msg := err.Error(); msg != w.problem {
		w.problem = msg
		ev := w.Log.Warn().Err(err).Str("management_url", w.Client.URL())
		if errors.Is(err, management.ErrUnauthorized) || errors.Is(err, management.ErrForbidden) {
			ev = ev.Str("hint", "give the daemon's RabbitMQ user the management tag (the rabbitmq image does), or set RABBITMQ_MANAGEMENT_URL=off")
		}
		ev.Msg("cannot check the policies on the daemon's queues: RabbitMQ's management API did not answer")
	}
}

// logChange logs v if it differs from what was last logged of its queue.
func (w *Watcher) logChange(ctx context.Context, v Verdict) {
	var state string
	if !v.OK() {
		state = fmt.Sprintf("%s|%s|%v", v.Policy, v.OperatorPolicy, v.Problems)
	}
	w.mu.Lock()
	before, seen := w.logged[v.Name]
	w.logged[v.Name] = state
	w.mu.Unlock()
	switch {
	case state == before && seen:
		return
	case state == "" && seen:
		w.Log.Info().Str("queue", v.Name).Str("role", v.Role).Str("policy", v.Policy).
			Msg("what RabbitMQ applies to this queue is again what fpmq relies on")
		return
	case state == "":
		return
	}
	var problems []string
	for _, p := range v.Problems {
		problems = append(problems, p.Key+": "+p.What)
	}
	ev := w.Log.Error().Str("queue", v.Name).Str("role", v.Role).Str("policy", v.Policy)
	if v.Policy != "" && !isOwn(v.Policy) {
		// Reading policies takes the policymaker tag: without it, no
		// priority is known.
		if prio, err := w.Client.PolicyPriority(ctx, v.Policy, false); err == nil {
			ev = ev.Int("policy_priority", prio)
		}
	}
	if v.OperatorPolicy != "" {
		ev = ev.Str("operator_policy", v.OperatorPolicy)
	}
	ev.Strs("problems", problems).Str("fix", Fix(w.Topology, v)).
		Msg("RabbitMQ's policies undo what fpmq relies on for this queue: " + strings.Join(v.Keys(), ", "))
}

// Fix says how to make the queue of v as fpmq relies on, in a sentence
// or two for the log.
func Fix(t broker.Topology, v Verdict) string {
	own, ownName := Own(t, v.Role), ""
	switch v.Role {
	case queuestat.RoleJob:
		ownName = "fpmq-" + t.Queue
	case queuestat.RoleDead:
		ownName = "fpmq-" + t.Queue + "-dead"
	}
	keys := strings.Join(v.Keys(), ", ")
	var fixes []string
	switch {
	case v.Policy != "" && !isOwn(v.Policy) && own != "":
		fixes = append(fixes, fmt.Sprintf("policy %q applies to %s instead of fpmq's %s (RabbitMQ applies one policy per queue, the one of highest priority): "+
			"add fpmq's keys %s to it, leave %s out of its pattern, or give fpmq's policies a priority above its own (POLICY_PRIORITY in the rabbitmq image)",
			v.Policy, v.Name, ownName, own, v.Name))
	case v.Policy != "":
		fixes = append(fixes, fmt.Sprintf("take %s out of policy %q, or leave %s out of its pattern", keys, v.Policy, v.Name))
	case own != "":
		fixes = append(fixes, fmt.Sprintf("no policy applies to %s: define fpmq's %s %s (the rabbitmq image does; see the daemon's README, Policies)", v.Name, ownName, own))
	}
	if v.OperatorPolicy != "" {
		fixes = append(fixes, fmt.Sprintf("operator policy %q applies too, and its limits add to any policy's: take %s out of it, or leave %s out of its pattern",
			v.OperatorPolicy, keys, v.Name))
	}
	if len(fixes) == 0 {
		fixes = append(fixes, fmt.Sprintf("the queue's own arguments set %s: re-create %s without them", keys, v.Name))
	}
	return strings.Join(fixes, "; ")
}
