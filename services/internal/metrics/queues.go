package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fpmq/fpmq/services/internal/queuestat"
)

// queueCollector reports the latest figures of the daemon's queues, read
// from RabbitMQ in the background, so that a scrape never waits for it.
type queueCollector struct {
	last             func() ([]queuestat.Stat, time.Time)
	ready, consumers *prometheus.Desc
}

// NewQueueCollector returns a collector of the queue figures that last
// returns (queuestat.Poller.Last). With no figures, it reports none.
func NewQueueCollector(last func() ([]queuestat.Stat, time.Time)) prometheus.Collector {
	labels := []string{"queue", "role"}
	return &queueCollector{
		last: last,
		ready: prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "messages_ready"),
			"Messages ready for delivery in the queue (role job, retry, delay or dead), as RabbitMQ last said; 0 for a queue that does not exist.", labels, nil),
		consumers: prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "consumers"),
			"Consumers of the queue, from every daemon, as RabbitMQ last said.", labels, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.consumers
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	stats, _ := c.last()
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(s.Ready), s.Name, s.Role)
		ch <- prometheus.MustNewConstMetric(c.consumers, prometheus.GaugeValue, float64(s.Consumers), s.Name, s.Role)
	}
}
