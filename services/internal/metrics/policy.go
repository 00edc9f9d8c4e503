package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fpmq/fpmq/services/internal/queuepolicy"
)

// policyCollector reports whether what RabbitMQ applies to each of the
// daemon's queues is what fpmq relies on, from the latest check of the
// policies (queuepolicy.Watcher), so that a scrape never waits for it.
type policyCollector struct {
	last func() ([]queuepolicy.Verdict, bool)
	ok   *prometheus.Desc
}

// NewPolicyCollector returns a collector of fpmq_queue_policy_ok{queue,
// role} from the verdicts that last returns (queuepolicy.Watcher.Last):
// 1 when the queue's arguments and policies are what fpmq relies on, 0
// when they are not (the daemon's log says why). It reports none before
// the first check, when the check failed, for a queue that does not
// exist, and for one whose policies RabbitMQ has not reported yet. Like the queue figures, its series name each of the route's
// queues in their own queue label: register it through Registry.
func NewPolicyCollector(last func() ([]queuepolicy.Verdict, bool)) prometheus.Collector {
	return &policyCollector{
		last: last,
		ok: prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "policy_ok"),
			"1 when what RabbitMQ applies to the queue (role job, retry, delay or dead), from its arguments and policies, is what fpmq relies on: jobs the broker drops go to the dead-letter queue, dead letters are never dropped; 0 when not (the daemon's log says why).",
			[]string{"queue", "role"}, nil),
	}
}

func (c *policyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.ok }

func (c *policyCollector) Collect(ch chan<- prometheus.Metric) {
	verdicts, _ := c.last()
	for _, v := range verdicts {
		if v.Known() {
			ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, bit(v.OK()), v.Name, v.Role)
		}
	}
}

// NewPolicyCheckedGauge returns fpmq_queue_policy_checked: 1 when the
// latest check of the policies got an answer from RabbitMQ's management
// API, which last (queuepolicy.Watcher.Last) tells. Register it with
// MustRegister.
func NewPolicyCheckedGauge(last func() ([]queuepolicy.Verdict, bool)) prometheus.Collector {
	return gaugeFunc("queue_policy_checked",
		"1 when the daemon's latest check of the policies on its queues got an answer from RabbitMQ's management API (0: off, unreachable, or the user lacks the management tag).",
		func() float64 {
			_, checked := last()
			return bit(checked)
		})
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
