package webhook

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the intake's metrics, shared by every source.
type Metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the intake metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_webhooks_total",
			Help: "Webhook deliveries received, by source, event key (\"unknown\" until the signature is verified) and outcome.",
		}, []string{"source", "event", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rolekeeper_webhook_intake_duration_seconds",
			Help:    "Time from request to answer at the webhook intake (read, verify, parse, store).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	reg.MustRegister(m.total, m.duration)
	return m
}
