package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// withKinds adds a Jira project, a requirements rule on technical leads
// and a break-glass rule on the chief architect to the base file.
func withKinds(t *testing.T, requirements, glass bool) string {
	t.Helper()
	s := strings.Replace(base, "    repositories: [reloadly/payments-api]\n", "    repositories: [reloadly/payments-api]\n    jira_projects: [PAY]\n", 1)
	if requirements {
		s = strings.Replace(s, "          code-review: {reviewers: 1, approvals: 1}\n",
			"          code-review: {reviewers: 1, approvals: 1}\n      - text: Creates and defines product requirements for each user story\n        enforce:\n          requirements: {}\n", 1)
	}
	if glass {
		s = strings.Replace(s, "      - Reviews engineering design\n",
			"      - text: Reviews engineering design\n        enforce:\n          break-glass: {environments: [production]}\n", 1)
	}
	return s
}

// A proposed requirements rule shows on the issues replayed, and a
// break-glass by someone the proposal does not let break the glass is a
// violation.
func TestRunRegisteredKinds(t *testing.T) {
	current, proposed := parse(t, withKinds(t, false, true)), parse(t, withKinds(t, true, false))
	snap := rules.IssueSnapshot{Issue: model.Issue{Key: "PAY-7", Project: "PAY", Type: "Story", Status: "In Progress",
		StatusCategory: "indeterminate", Description: "do it"}, Now: t0}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	s := &src{
		decisions: []store.DecisionRecord{{ID: 1, Kind: model.SubjectIssue, IssueKey: "PAY-7", Snapshot: b, CreatedAt: t0}},
		gates: []store.Gate{{ID: "g1", Repository: "reloadly/payments-api", Environment: "production", Commit: "abcdef1234567",
			State: store.GateApproved, BreakGlass: true, DecidedBy: "acc-zed", Approvers: []string{"acc-ana"}, CreatedAt: t0}},
	}
	res, err := Run(context.Background(), s, current, proposed, t0.Add(-1), t0.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Issues != 1 || len(res.IssueDiffs) != 1 || len(res.IssueDiffs[0].Before) != 0 ||
		len(res.IssueDiffs[0].After) != 1 || !strings.Contains(res.IssueDiffs[0].After[0], "finding requirements:PAY-7") {
		t.Errorf("issue diffs %+v", res.IssueDiffs)
	}
	if len(res.GateDiffs) != 1 || !res.GateDiffs[0].Violation || !strings.Contains(res.GateDiffs[0].Why, "no break-glass rule covers production") {
		t.Errorf("gate diffs %+v", res.GateDiffs)
	}
	var out bytes.Buffer
	Print(&out, res)
	if !strings.Contains(out.String(), "issue PAY-7") || !strings.Contains(out.String(), "before: nothing") {
		t.Errorf("printed:\n%s", out.String())
	}
	// The same file on both sides: nothing differs.
	res, err = Run(context.Background(), s, current, current, t0.Add(-1), t0.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IssueDiffs) != 0 || len(res.GateDiffs) != 0 {
		t.Errorf("same file: %+v %+v", res.IssueDiffs, res.GateDiffs)
	}
}
