// Package upstream holds what the Bitbucket and Jira clients share: a
// retrying http.RoundTripper (429/5xx, full-jitter exponential backoff,
// Retry-After), the upstream request metrics and a typed error that the
// inbox understands (Temporary, RetryAfter, Permanent).
package upstream

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts and times upstream requests by service, endpoint and
// status code. Both clients may call NewMetrics on the same registry: the
// second call reuses the collectors already registered.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	budget    *prometheus.GaugeVec
}

// NewMetrics creates the upstream metrics and registers them on reg (nil:
// not registered). The names are rolekeeper_upstream_requests_total and
// rolekeeper_upstream_request_duration_seconds.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_upstream_requests_total",
			Help: "Requests sent to Bitbucket and Jira, each attempt counted, by service, endpoint and status code (\"error\" when no answer).",
		}, []string{"service", "endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rolekeeper_upstream_request_duration_seconds",
			Help:    "Duration of one attempt of a request to Bitbucket or Jira.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"service", "endpoint"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_upstream_throttled_total",
			Help: "Requests held back for the upstream's rate limit, by service and action: paced (spaced out near the limit), waited (until the window opened), handed_back (the caller waits: the delivery goes back to the inbox).",
		}, []string{"service", "action"}),
		budget: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rolekeeper_upstream_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of the last answer that carried it, by service.",
		}, []string{"service"}),
	}
	if reg == nil {
		return m
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.throttled = register(reg, m.throttled)
	m.budget = register(reg, m.budget)
	return m
}

// register registers c, or returns the identical collector already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting collector of the same name is a programming error.
		panic(err)
	}
	return c
}

// Observe records one attempt. code 0 means no answer (network error).
// A nil *Metrics records nothing.
func (m *Metrics) Observe(service, endpoint string, code int, d time.Duration) {
	if m == nil {
		return
	}
	c := "error"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(service, endpoint, c).Inc()
	m.duration.WithLabelValues(service, endpoint).Observe(d.Seconds())
}

// throttle counts a request held back for the rate limit.
func (m *Metrics) throttle(service, action string) {
	if m == nil {
		return
	}
	m.throttled.WithLabelValues(service, action).Inc()
}

// remaining records the upstream's X-RateLimit-Remaining.
func (m *Metrics) remaining(service string, n int) {
	if m == nil {
		return
	}
	m.budget.WithLabelValues(service).Set(float64(n))
}
