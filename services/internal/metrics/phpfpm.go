package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fpmq/fpmq/services/internal/phpfpm"
)

// poolCollector reads the pool's status page at every scrape. The status
// request is served by one of the pool's children, so on a saturated pool
// it waits for a free one, up to the timeout; the scrape then reports
// fpmq_phpfpm_up 0 and no pool figures.
type poolCollector struct {
	fetch   func(ctx context.Context) (phpfpm.Status, error)
	timeout time.Duration

	up, active, idle, total, listenQueue, maxListenQueue, accepted, maxChildren, slow *prometheus.Desc
}

// NewPoolCollector returns a collector of php-fpm's pool state, read with fetch.
func NewPoolCollector(fetch func(ctx context.Context) (phpfpm.Status, error), timeout time.Duration) prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "phpfpm", name), help, nil, nil)
	}
	return &poolCollector{
		fetch:          fetch,
		timeout:        timeout,
		up:             desc("up", "1 when php-fpm's status page answered this scrape."),
		active:         desc("active_processes", "Pool children running a request."),
		idle:           desc("idle_processes", "Pool children waiting for a request."),
		total:          desc("processes", "Pool children."),
		listenQueue:    desc("listen_queue", "Connections waiting for a free child."),
		maxListenQueue: desc("listen_queue_max", "Most connections ever waiting for a free child."),
		accepted:       desc("accepted_connections_total", "Connections the pool accepted."),
		maxChildren:    desc("max_children_reached_total", "Times the pool had every child busy and wanted more."),
		slow:           desc("slow_requests_total", "Requests slower than the pool's request_slowlog_timeout."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.active, c.idle, c.total, c.listenQueue, c.maxListenQueue, c.accepted, c.maxChildren, c.slow} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.fetch(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, s.ActiveProcesses)
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, s.IdleProcesses)
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, s.TotalProcesses)
	ch <- prometheus.MustNewConstMetric(c.listenQueue, prometheus.GaugeValue, s.ListenQueue)
	ch <- prometheus.MustNewConstMetric(c.maxListenQueue, prometheus.GaugeValue, s.MaxListenQueue)
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, s.AcceptedConn)
	ch <- prometheus.MustNewConstMetric(c.maxChildren, prometheus.CounterValue, s.MaxChildrenReached)
	ch <- prometheus.MustNewConstMetric(c.slow, prometheus.CounterValue, s.SlowRequests)
}
