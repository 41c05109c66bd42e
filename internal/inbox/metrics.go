package inbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/store"
)

type metrics struct {
	processed *prometheus.CounterVec
	dead      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	lost      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st store.Inbox, now func() time.Time) (*metrics, error) {
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_inbox_processed_total",
			Help: "Delivery processing attempts by source and result (done, retry, dead).",
		}, []string{"source", "result"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_inbox_dead_letters_total",
			Help: "Deliveries dead-lettered (permanent error or too many attempts), by source.",
		}, []string{"source"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rolekeeper_inbox_processing_duration_seconds",
			Help:    "Time spent processing one delivery, by source.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"source"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rolekeeper_inbox_lost_claims_total",
			Help: "Deliveries this replica stopped acting on because another worker took its claim (lease passed or heartbeat stale).",
		}),
	}
	for _, c := range []prometheus.Collector{m.processed, m.dead, m.duration, m.lost, newDepthCollector(st, now)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// depthCollector reads the queue's state from the store at scrape time.
type depthCollector struct {
	st            store.Inbox
	now           func() time.Time
	depth, oldest *prometheus.Desc
}

func newDepthCollector(st store.Inbox, now func() time.Time) *depthCollector {
	return &depthCollector{
		st:  st,
		now: now,
		depth: prometheus.NewDesc("rolekeeper_inbox_depth",
			"Deliveries in the inbox by state (pending, processing, dead).", []string{"state"}, nil),
		oldest: prometheus.NewDesc("rolekeeper_inbox_oldest_pending_seconds",
			"Age of the oldest pending delivery (0 when none).", nil, nil),
	}
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.st.InboxStats(ctx)
	if err != nil {
		return // the store is down: /readyz says so; the scrape goes on without these
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Processing), "processing")
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Dead), "dead")
	age := 0.0
	if !s.OldestPending.IsZero() {
		if age = c.now().Sub(s.OldestPending).Seconds(); age < 0 {
			age = 0
		}
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
