// Package retention keeps the store bounded: it deletes processed
// deliveries (bodies of up to 5 MiB each), dead letters and decisions once
// they are older than their settings, a small batch per statement so that
// webhook intake never waits long behind it, and exports the size of the
// store. The scheduled job runs it on the cron leader only.
package retention

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/store"
)

// Options configure a Pruner. Zero ages keep that kind forever.
type Options struct {
	Store          store.Retention
	DoneDeliveries time.Duration
	DeadLetters    time.Duration
	Decisions      time.Duration
	Batch          int           // rows per statement; default 500
	Pause          time.Duration // between batches, so other writers get the database; default 20 ms
	MaxBatches     int           // per kind and run, a bound on one run; default 1,000
	Now            func() time.Time
	Logger         *zap.Logger
	Registerer     prometheus.Registerer // required
}

// Result counts the rows one run deleted.
type Result struct {
	Done, Dead, Decisions int
}

// Pruner deletes what the store no longer keeps.
type Pruner struct {
	opt     Options
	deleted *prometheus.CounterVec
}

// New registers the retention and store-size metrics.
func New(opt Options) (*Pruner, error) {
	if opt.Store == nil || opt.Registerer == nil {
		return nil, errors.New("retention: store and registerer are required")
	}
	if opt.Batch <= 0 {
		opt.Batch = 500
	}
	if opt.Pause <= 0 {
		opt.Pause = 20 * time.Millisecond
	}
	if opt.MaxBatches <= 0 {
		opt.MaxBatches = 1000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	p := &Pruner{opt: opt, deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rolekeeper_retention_deleted_total",
		Help: "Rows deleted by retention, by kind (deliveries_done, deliveries_dead, decisions).",
	}, []string{"table"})}
	for _, c := range []prometheus.Collector{p.deleted, newSizeCollector(opt.Store)} {
		if err := opt.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("retention: register metrics: %w", err)
		}
	}
	return p, nil
}

// Run deletes, batch after batch, everything past its age, and returns
// how much it deleted. It stops at ctx's end between batches.
func (p *Pruner) Run(ctx context.Context) (Result, error) {
	var res Result
	now := p.opt.Now().UTC()
	kinds := []struct {
		label string
		age   time.Duration
		n     *int
		prune func(before time.Time, n int) (int, error)
	}{
		{"deliveries_done", p.opt.DoneDeliveries, &res.Done, func(before time.Time, n int) (int, error) {
			return p.opt.Store.PruneDeliveries(ctx, store.DeliveryDone, before, n)
		}},
		{"deliveries_dead", p.opt.DeadLetters, &res.Dead, func(before time.Time, n int) (int, error) {
			return p.opt.Store.PruneDeliveries(ctx, store.DeliveryDead, before, n)
		}},
		{"decisions", p.opt.Decisions, &res.Decisions, func(before time.Time, n int) (int, error) {
			return p.opt.Store.PruneDecisions(ctx, before, n)
		}},
	}
	for _, k := range kinds {
		if k.age <= 0 {
			continue
		}
		before := now.Add(-k.age)
		for range p.opt.MaxBatches {
			n, err := k.prune(before, p.opt.Batch)
			*k.n += n
			p.deleted.WithLabelValues(k.label).Add(float64(n))
			if err != nil {
				return res, fmt.Errorf("retention: %s: %w", k.label, err)
			}
			if n < p.opt.Batch {
				break
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(p.opt.Pause):
			}
		}
	}
	if res != (Result{}) {
		p.opt.Logger.Info("retention: deleted old rows", zap.Int("done_deliveries", res.Done),
			zap.Int("dead_letters", res.Dead), zap.Int("decisions", res.Decisions))
	}
	return res, nil
}

// sizeCollector reads the store's size at scrape time, at most every
// cacheFor: counting rows is not free on a large table.
type sizeCollector struct {
	st         store.Retention
	rows, size *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	last store.StoreSize
	ok   bool
}

const cacheFor = 15 * time.Second

func newSizeCollector(st store.Retention) *sizeCollector {
	return &sizeCollector{
		st:   st,
		rows: prometheus.NewDesc("rolekeeper_store_rows", "Rows per store table.", []string{"table"}, nil),
		size: prometheus.NewDesc("rolekeeper_store_size_bytes",
			"Size of the database: the SQLite file's pages, or the PostgreSQL schema's relations.", nil, nil),
	}
}

func (c *sizeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rows
	ch <- c.size
}

func (c *sizeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || time.Since(c.at) >= cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := c.st.Size(ctx)
		cancel()
		if err != nil {
			return // the store is down: /readyz says so; the scrape goes on without these
		}
		c.last, c.at, c.ok = s, time.Now(), true
	}
	for _, t := range c.last.Tables {
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(t.Rows), t.Table)
	}
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(c.last.Bytes))
}
