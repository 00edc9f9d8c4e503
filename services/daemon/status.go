package main

import (
	"context"

	"github.com/fpmq/fpmq/services/internal/admin"
	"github.com/fpmq/fpmq/services/internal/broker"
	"github.com/fpmq/fpmq/services/internal/queuestat"
)

// operations are what the admin endpoints do to the daemon: the
// operator's pause and resume, and the status.
func (d *daemon) operations() admin.Operations {
	c := d.consumer
	return admin.Operations{
		Pause:      func(reason string) admin.Pause { return d.pauseState(c.Pause(reason)) },
		Resume:     func() admin.Pause { return d.pauseState(c.Resume()) },
		PauseState: func() admin.Pause { return d.pauseState(false) },
		Status:     d.status,
		Jobs: func() admin.Jobs {
			return admin.Jobs{Queue: d.topology.Queue, Failures: d.journal.Failures(), Names: d.journal.Names()}
		},
	}
}

// pauseState reports the operator's pause; changed says whether the
// request at hand changed it. The consumer acts on a change in the
// background: State may still be the one from before.
func (d *daemon) pauseState(changed bool) admin.Pause {
	c := d.consumer
	paused, reason, since := c.OperatorPaused()
	p := admin.Pause{
		Paused:  paused,
		Changed: changed,
		Reason:  reason,
		Since:   since,
		State:   c.State().String(),
		Running: d.inFlight.Load(),
		Held:    c.Held(),
	}
	if err := c.PauseReason(); err != nil {
		p.PoolPause = err.Error()
	}
	return p
}

// status gathers the daemon's route: RabbitMQ's figures, read now (or
// those of the last poll if RabbitMQ does not answer), and the daemon's
// own.
func (d *daemon) status(ctx context.Context) admin.Status {
	var st admin.Status
	stats, at, err := d.queues.Read(ctx)
	if err != nil {
		st.BrokerError = "read the queues from RabbitMQ: " + err.Error()
		if last, lastAt := d.queues.Last(); last != nil {
			stats, at = last, lastAt
			st.BrokerError += " (figures of the last poll shown)"
		}
	}
	st.BrokerAt = at
	byName := make(map[string]queuestat.Stat, len(stats))
	for _, s := range stats {
		byName[s.Name] = s
	}
	// ready returns a queue's figure, nil when RabbitMQ was not asked; a
	// queue that does not exist holds nothing.
	ready := func(name string) *int {
		s, ok := byName[name]
		if !ok {
			return nil
		}
		return &s.Ready
	}

	t := d.topology
	r := admin.Route{
		Queue:   t.Queue,
		Pause:   d.pauseState(false),
		Ready:   ready(t.Queue),
		Unacked: d.consumer.Held(),
		Dead:    ready(t.DeadQueue),
		Retry:   []admin.RetryQueue{},
	}
	if s, ok := byName[t.Queue]; ok {
		r.Consumers = &s.Consumers
	}
	for _, level := range t.RetryLevels() {
		name := t.RetryQueue(level)
		r.Retry = append(r.Retry, admin.RetryQueue{Queue: name, Delay: t.RetryDelays[level].String(), Ready: ready(name)})
	}
	// Delayed sums the delay queues that RabbitMQ told of.
	r.DelayQueues = []admin.RetryQueue{}
	for _, delay := range broker.DelayBuckets(t.DelayMax) {
		n := ready(t.DelayQueue(delay))
		r.DelayQueues = append(r.DelayQueues, admin.RetryQueue{Queue: t.DelayQueue(delay), Delay: delay.String(), Ready: n})
		if n != nil {
			if r.Delayed == nil {
				r.Delayed = new(int)
			}
			*r.Delayed += *n
		}
	}
	rates := d.rates.Rates()
	r.SucceededPerSecond, r.FailedPerSecond, r.RateSeconds = rates.Succeeded, rates.Failed, rates.Over.Seconds()
	st.Routes = []admin.Route{r}
	return st
}
