package prflow

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/rules"
)

// Action labels of rolekeeper_actions_total.
const (
	actionReviewers     = "reviewers_put"
	actionStatus        = "status_post"
	actionCommentCreate = "comment_create"
	actionCommentUpdate = "comment_update"
)

// Outcome labels of rolekeeper_actions_total.
const (
	outcomeOK      = "ok"
	outcomeError   = "error"
	outcomeDryRun  = "dry_run"
	outcomeSkipped = "skipped" // nothing to change upstream
)

type metrics struct {
	decisions *prometheus.CounterVec
	actions   *prometheus.CounterVec
}

func newMetrics() metrics {
	return metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_decisions_total",
			Help: "Pull-request rule verdicts, by rule id and result (met, unmet, not_triggered).",
		}, []string{"rule", "result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_actions_total",
			Help: "Pull-request actions, by action and outcome (ok, error, dry_run, skipped: already in place).",
		}, []string{"action", "outcome"}),
	}
}

func (m metrics) register(r prometheus.Registerer) error {
	if err := r.Register(m.decisions); err != nil {
		return err
	}
	return r.Register(m.actions)
}

func (m metrics) decided(d *rules.Decision) {
	for _, r := range d.Rules {
		result := "not_triggered"
		switch {
		case r.Triggered && r.Met:
			result = "met"
		case r.Triggered:
			result = "unmet"
		}
		m.decisions.WithLabelValues(r.RuleID, result).Inc()
	}
}

func (m metrics) action(action, outcome string) {
	m.actions.WithLabelValues(action, outcome).Inc()
}
