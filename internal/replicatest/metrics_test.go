package replicatest

import (
	"math"
	"os"
	"strings"
	"testing"
)

const scrape = `# HELP rolekeeper_webhooks_total Webhook deliveries received.
# TYPE rolekeeper_webhooks_total counter
rolekeeper_webhooks_total{event="pullrequest:created",outcome="accepted",source="bitbucket"} 998
rolekeeper_webhooks_total{event="pullrequest:created",outcome="duplicate",source="bitbucket"} 2
rolekeeper_webhooks_total{event="unknown",outcome="bad_signature",source="bitbucket"} 1
rolekeeper_job_runs_total{job="weekly_report",result="ok"} 3
rolekeeper_job_runs_total{job="weekly_report",result="skipped_not_leader"} 5
rolekeeper_build_info{commit="",goversion="go1.26",version="a \"quoted\", b\\c"} 1
rolekeeper_inbox_depth{state="pending"} 0
process_resident_memory_bytes 3.3554432e+07
go_gc_duration_seconds_sum 0.5 1700000000000
weird{le="+Inf"} +Inf
`

func TestParseMetrics(t *testing.T) {
	s, err := ParseMetrics(strings.NewReader(scrape))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		metric string
		match  map[string]string
		want   float64
	}{
		{"all of a name", "rolekeeper_webhooks_total", nil, 1001},
		{"one label", "rolekeeper_webhooks_total", map[string]string{"outcome": "accepted"}, 998},
		{"two labels", "rolekeeper_webhooks_total", map[string]string{"outcome": "duplicate", "source": "bitbucket"}, 2},
		{"no match", "rolekeeper_webhooks_total", map[string]string{"source": "jira"}, 0},
		{"job runs not skipped", "rolekeeper_job_runs_total", map[string]string{"result": "ok"}, 3},
		{"escaped label value", "rolekeeper_build_info", map[string]string{"version": `a "quoted", b\c`}, 1},
		{"no labels, exponent", "process_resident_memory_bytes", nil, 33554432},
		{"timestamp ignored", "go_gc_duration_seconds_sum", nil, 0.5},
		{"unknown name", "nope", nil, 0},
		{"zero", "rolekeeper_inbox_depth", map[string]string{"state": "pending"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Sum(tt.metric, tt.match); got != tt.want {
				t.Errorf("Sum(%s, %v) = %v, want %v", tt.metric, tt.match, got, tt.want)
			}
		})
	}
	if got := s.Sum("weird", nil); !math.IsInf(got, 1) {
		t.Errorf("+Inf parsed as %v", got)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, in := range []string{
		"novalue",
		`m{a="1" 2`,
		`m{a=1} 2`,
		`m{a="1"} notanumber`,
		`m{a="unterminated} 2`,
	} {
		if _, err := ParseMetrics(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMetrics(%q): no error", in)
		}
	}
}

func TestPeakRSS(t *testing.T) {
	n, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary holds at least a megabyte and far less than 10 GiB.
	if n < 1<<20 || n > 10<<30 {
		t.Errorf("VmHWM of this test: %d bytes", n)
	}
}
