package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

const base = `version: 1
organization: Test
roles:
  technical-lead:
    title: Technical lead
    responsibilities:
      - text: Reviews code written by the engineers in the team
        enforce:
          code-review: {reviewers: 1, approvals: 1}
  product-owner:
    title: Product owner
    responsibilities:
      - text: Performs and oversees production deployments
        enforce:
          deploy-approval: {environments: [production]}
  chief-architect:
    title: Chief architect
    scope: organization
    responsibilities:
      - Reviews engineering design
teams:
  payments:
    repositories: [reloadly/payments-api]
people:
  - {id: mei, name: Mei Chen, account_id: acc-mei, roles: [technical-lead], teams: [payments]}
  - {id: tom, name: Tom Berg, account_id: acc-tom, roles: [technical-lead], teams: [payments]}
  - {id: ana, name: Ana Souza, account_id: acc-ana, roles: [product-owner], teams: [payments]}
  - {id: bo, name: Bo Lin, account_id: acc-bo, roles: [product-owner], teams: [payments]}
  - {id: zed, name: Zed Ali, account_id: acc-zed, roles: [chief-architect]}
`

func parse(t *testing.T, src string) *roles.Org {
	t.Helper()
	org, err := roles.ParseAt("roles.yaml", []byte(src), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return org
}

type src struct {
	decisions []store.DecisionRecord
	prs       []store.PRRecord
	gates     []store.Gate
}

func (s *src) ListDecisions(_ context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error) {
	var out []store.DecisionRecord
	for _, d := range s.decisions {
		if d.Kind == f.Kind && !d.CreatedAt.Before(f.Since) && d.CreatedAt.Before(f.Until) {
			out = append(out, d)
		}
	}
	return out, nil
}
func (s *src) ListPRs(context.Context, store.PRFilter) ([]store.PRRecord, error) { return s.prs, nil }
func (s *src) ListGates(context.Context, store.GateFilter) ([]store.Gate, error) { return s.gates, nil }

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func record(t *testing.T, id int64, pr int, snap rules.PRSnapshot, at time.Time) store.DecisionRecord {
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	return store.DecisionRecord{ID: id, Kind: model.SubjectPullRequest, Repository: "reloadly/payments-api", PR: pr, Snapshot: b, CreatedAt: at}
}

func TestRun(t *testing.T) {
	current := parse(t, base)
	// The proposal moves code review to the chief architect and production
	// approvals to the chief architect as well.
	proposed := parse(t, strings.NewReplacer(
		"      - text: Reviews code written by the engineers in the team\n        enforce:\n          code-review: {reviewers: 1, approvals: 1}\n",
		"      - Reviews code written by the engineers in the team\n",
		"      - Reviews engineering design\n",
		"      - text: Reviews engineering design\n        enforce:\n          code-review: {reviewers: 1, approvals: 1}\n",
		"      - text: Performs and oversees production deployments\n        enforce:\n          deploy-approval: {environments: [production]}\n",
		"      - Performs and oversees production deployments\n",
	).Replace(base))

	open := rules.PRSnapshot{Repository: "reloadly/payments-api", Number: 1, Author: model.Actor{AccountID: "acc-ana"},
		State: model.PROpen, ChangedFiles: []string{"main.go"}, Now: t0}
	mergedOK := rules.PRSnapshot{Repository: "reloadly/payments-api", Number: 2, Author: model.Actor{AccountID: "acc-ana"},
		State: model.PROpen, ChangedFiles: []string{"main.go"}, Reviewers: []string{"acc-mei"},
		Approvals: []model.Approval{{AccountID: "acc-mei", State: model.ReviewApproved}}, Now: t0}
	s := &src{
		decisions: []store.DecisionRecord{
			record(t, 1, 1, open, t0),
			record(t, 2, 2, mergedOK, t0.Add(time.Hour)),
			record(t, 3, 9, open, t0.AddDate(0, 0, -60)), // outside the period
		},
		prs: []store.PRRecord{{Repository: "reloadly/payments-api", ID: 2, State: model.PRMerged}},
		gates: []store.Gate{{ID: "g1", Repository: "reloadly/payments-api", Commit: strings.Repeat("a", 40), Environment: "production",
			State: store.GateApproved, Approvers: []string{"acc-ana", "acc-bo"}, DecidedBy: "acc-bo", CreatedAt: t0}},
	}
	res, err := Run(context.Background(), s, current, proposed, t0.AddDate(0, 0, -28), t0.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if res.PullRequests != 2 || res.Gates != 1 {
		t.Fatalf("replayed %d PRs and %d gates", res.PullRequests, res.Gates)
	}
	if len(res.PRDiffs) != 2 {
		t.Fatalf("pr diffs = %+v", res.PRDiffs)
	}
	o := res.PRDiffs[0]
	if o.Ref != "reloadly/payments-api#1" || len(o.AskedAfter) != 1 || o.AskedAfter[0] != "Zed Ali" || o.Merged {
		t.Errorf("open PR diff = %+v", o)
	}
	m := res.PRDiffs[1]
	if !m.Merged || !m.NewViolation || m.MetAfter || !m.MetBefore {
		t.Errorf("merged PR diff = %+v", m)
	}
	if len(res.GateDiffs) != 1 || !strings.Contains(res.GateDiffs[0].Why, "approved at once") {
		t.Errorf("gate diffs = %+v", res.GateDiffs)
	}
	var buf bytes.Buffer
	Print(&buf, res)
	for _, want := range []string{"Replayed 2 pull requests, 1 deployment gates and 0 Jira issues", "[NEW VIOLATION]", "would ask Zed Ali instead of", "gate g1"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	// The same roles proposed: nothing differs.
	res, err = Run(context.Background(), s, current, current, t0.AddDate(0, 0, -28), t0.AddDate(0, 0, 1))
	if err != nil || len(res.PRDiffs) != 0 || len(res.GateDiffs) != 0 || res.Unchanged != 3 {
		t.Errorf("identity proposal: %+v %v", res, err)
	}
	buf.Reset()
	Print(&buf, res)
	if !strings.Contains(buf.String(), "Nothing would have differed") {
		t.Errorf("identity output: %s", buf.String())
	}
}

func TestGateApproverNoLongerEligible(t *testing.T) {
	current := parse(t, base)
	// Bo leaves the product-owner role.
	proposed := parse(t, strings.Replace(base, "{id: bo, name: Bo Lin, account_id: acc-bo, roles: [product-owner], teams: [payments]}",
		"{id: bo, name: Bo Lin, account_id: acc-bo, roles: [technical-lead], teams: [payments]}", 1))
	s := &src{gates: []store.Gate{
		{ID: "g1", Repository: "reloadly/payments-api", Commit: "abc1234", Environment: "production", State: store.GateApproved,
			Approvers: []string{"acc-ana", "acc-bo"}, DecidedBy: "acc-bo", CreatedAt: t0},
		{ID: "g2", Repository: "reloadly/payments-api", Commit: "abc1235", Environment: "production", State: store.GateApproved,
			Approvers: []string{"acc-ana", "acc-bo"}, DecidedBy: "acc-ana", CreatedAt: t0},
	}}
	res, err := Run(context.Background(), s, current, proposed, t0.AddDate(0, 0, -1), t0.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GateDiffs) != 1 || res.GateDiffs[0].Gate != "g1" || !res.GateDiffs[0].Violation {
		t.Errorf("gate diffs = %+v", res.GateDiffs)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	tests := map[string]string{"4w": "2026-10-29", "10d": "2026-11-16", "48h": "2026-11-24", "2026-11-01": "2026-11-01"}
	for in, want := range tests {
		got, err := ParseSince(in, now)
		if err != nil || got.Format("2006-01-02") != want {
			t.Errorf("ParseSince(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "w", "4x", "-4w", "4.5w", "0w"} {
		if _, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}
