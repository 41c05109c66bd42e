// Package simulate replays the pull-request snapshots and deployment gates
// stored over a period through a proposed roles.yaml, and says what would
// have differed: who would have been asked, which merges would have been
// violations, which deployments would have needed someone else's approval.
// It is the answer to "what if we changed the roles?" asked of real history.
package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Source is what the simulation reads from the store.
type Source interface {
	ListDecisions(ctx context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error)
	ListPRs(ctx context.Context, f store.PRFilter) ([]store.PRRecord, error)
	ListGates(ctx context.Context, f store.GateFilter) ([]store.Gate, error)
}

// Result is everything that would have differed.
type Result struct {
	Since        time.Time  `json:"since"`
	Until        time.Time  `json:"until"`
	PullRequests int        `json:"pull_requests"` // replayed
	Gates        int        `json:"gates"`         // replayed
	PRDiffs      []PRDiff   `json:"pr_diffs"`
	GateDiffs    []GateDiff `json:"gate_diffs"`
	// Issues are the Jira issues replayed: those a rule acted on (only
	// they have a stored snapshot), so an issue no rule acted on cannot
	// show what a new rule kind would have done to it.
	Issues     int         `json:"issues"`
	IssueDiffs []IssueDiff `json:"issue_diffs"`
	Unchanged  int         `json:"unchanged"`
}

// IssueDiff is one Jira issue on which the rules would act differently:
// the actions (a task, a finding) asked for before and after.
type IssueDiff struct {
	Issue  string   `json:"issue"`
	Before []string `json:"before"`
	After  []string `json:"after"`
}

// PRDiff is one pull request whose outcome changes under the proposal.
type PRDiff struct {
	Ref           string   `json:"ref"` // ws/slug#N
	Merged        bool     `json:"merged"`
	AskedBefore   []string `json:"asked_before"`
	AskedAfter    []string `json:"asked_after"`
	RulesBefore   []string `json:"rules_before"` // triggered rule ids
	RulesAfter    []string `json:"rules_after"`
	MetBefore     bool     `json:"approvals_met_before"`
	MetAfter      bool     `json:"approvals_met_after"`
	NewViolation  bool     `json:"new_violation"`  // merged, held before, would not hold
	GoneViolation bool     `json:"gone_violation"` // merged, violated before, would hold
	Why           []string `json:"why"`
}

// GateDiff is one deployment gate whose outcome changes under the proposal.
type GateDiff struct {
	Gate        string `json:"gate"`
	Ref         string `json:"ref"` // ws/slug@sha → env
	StateBefore string `json:"state_before"`
	Why         string `json:"why"`
	Violation   bool   `json:"violation"` // opened by someone the proposal would not accept
}

// Run replays [since, until) through current (as things were decided) and
// proposed. Snapshots are evaluated under both, rather than trusting the
// stored decision, so that the comparison is like for like even when the
// engine has changed since.
func Run(ctx context.Context, src Source, current, proposed *roles.Org, since, until time.Time) (*Result, error) {
	res := &Result{Since: since, Until: until, PRDiffs: []PRDiff{}, GateDiffs: []GateDiff{}, IssueDiffs: []IssueDiff{}}
	recs, err := src.ListDecisions(ctx, store.DecisionFilter{Kind: model.SubjectPullRequest, Since: since, Until: until})
	if err != nil {
		return nil, err
	}
	// The last snapshot of each pull request in the period is its state as
	// it ended (merged with its approvals, or still open).
	last := map[string]store.DecisionRecord{}
	var order []string
	for _, r := range recs {
		if len(r.Snapshot) == 0 {
			continue
		}
		key := fmt.Sprintf("%s#%d", r.Repository, r.PR)
		if _, ok := last[key]; !ok {
			order = append(order, key)
		}
		last[key] = r
	}
	prs, err := src.ListPRs(ctx, store.PRFilter{UpdatedSince: since})
	if err != nil {
		return nil, err
	}
	merged := map[string]bool{}
	for _, p := range prs {
		if p.State == model.PRMerged {
			merged[fmt.Sprintf("%s#%d", p.Repository, p.ID)] = true
		}
	}
	before, after := rules.Compile(current), rules.Compile(proposed)
	for _, key := range order {
		var snap rules.PRSnapshot
		if err := json.Unmarshal(last[key].Snapshot, &snap); err != nil {
			return nil, fmt.Errorf("decision %d: snapshot: %w", last[key].ID, err)
		}
		res.PullRequests++
		wasMerged := merged[key] || snap.State == model.PRMerged
		if wasMerged {
			// Judge the merge as it happened, not as a fresh open PR.
			snap.State = model.PRMerged
		}
		d1, d2 := before.Evaluate(snap), after.Evaluate(snap)
		if diff, ok := comparePR(key, wasMerged, current, proposed, d1, d2); ok {
			res.PRDiffs = append(res.PRDiffs, diff)
		} else {
			res.Unchanged++
		}
	}
	gates, err := src.ListGates(ctx, store.GateFilter{Since: since, Until: until})
	if err != nil {
		return nil, err
	}
	for _, g := range gates {
		res.Gates++
		if d, ok := compareGate(proposed, g); ok {
			res.GateDiffs = append(res.GateDiffs, d)
		} else {
			res.Unchanged++
		}
	}
	if err := replayIssues(ctx, src, current, proposed, since, until, res); err != nil {
		return nil, err
	}
	return res, nil
}

// replayIssues evaluates the last stored snapshot of each Jira issue under
// both files and compares what the rules ask for (who would be assigned
// depends on the load of the day and is left out).
func replayIssues(ctx context.Context, src Source, current, proposed *roles.Org, since, until time.Time, res *Result) error {
	recs, err := src.ListDecisions(ctx, store.DecisionFilter{Kind: model.SubjectIssue, Since: since, Until: until})
	if err != nil {
		return err
	}
	last := map[string]store.DecisionRecord{}
	var order []string
	for _, r := range recs {
		if len(r.Snapshot) == 0 || r.IssueKey == "" {
			continue
		}
		if _, ok := last[r.IssueKey]; !ok {
			order = append(order, r.IssueKey)
		}
		last[r.IssueKey] = r
	}
	for _, key := range order {
		var snap rules.IssueSnapshot
		if err := json.Unmarshal(last[key].Snapshot, &snap); err != nil {
			return fmt.Errorf("decision %d: issue snapshot: %w", last[key].ID, err)
		}
		res.Issues++
		b, a := issueActions(rules.EvaluateIssue(current, snap)), issueActions(rules.EvaluateIssue(proposed, snap))
		if equal(b, a) {
			res.Unchanged++
			continue
		}
		res.IssueDiffs = append(res.IssueDiffs, IssueDiff{Issue: key, Before: b, After: a})
	}
	return nil
}

// issueActions lists what a decision asks for, one line per rule.
func issueActions(d rules.IssueDecision) []string {
	out := []string{}
	for _, r := range d.Rules {
		switch {
		case r.NeedsTask:
			out = append(out, fmt.Sprintf("%s: task %q", r.RuleID, r.TaskSummary))
		case r.Violation:
			key := r.FindingKey
			if key == "" {
				key = r.Kind + ":" + d.Issue
			}
			out = append(out, fmt.Sprintf("%s: finding %s", r.RuleID, key))
		}
	}
	sort.Strings(out)
	return out
}

func asked(org *roles.Org, d rules.Decision) []string {
	var out []string
	for _, p := range d.Request {
		name := p.Name
		if name == "" {
			name = p.AccountID
			if q := org.PersonByAccount(p.AccountID); q != nil {
				name = q.DisplayName()
			}
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func triggered(d rules.Decision) []string {
	var out []string
	for _, r := range d.Rules {
		if r.Triggered {
			out = append(out, r.RuleID)
		}
	}
	sort.Strings(out)
	return out
}

func comparePR(ref string, merged bool, cur, prop *roles.Org, d1, d2 rules.Decision) (PRDiff, bool) {
	diff := PRDiff{Ref: ref, Merged: merged, AskedBefore: asked(cur, d1), AskedAfter: asked(prop, d2),
		RulesBefore: triggered(d1), RulesAfter: triggered(d2), MetBefore: d1.ApprovalsMet, MetAfter: d2.ApprovalsMet}
	changed := false
	if !merged && !equal(diff.AskedBefore, diff.AskedAfter) {
		changed = true
		diff.Why = append(diff.Why, fmt.Sprintf("would ask %s instead of %s", list(diff.AskedAfter), list(diff.AskedBefore)))
	}
	if !equal(diff.RulesBefore, diff.RulesAfter) {
		changed = true
		diff.Why = append(diff.Why, fmt.Sprintf("rules triggered: %s instead of %s", list(diff.RulesAfter), list(diff.RulesBefore)))
	}
	if merged && d1.ApprovalsMet != d2.ApprovalsMet {
		changed = true
		if d1.ApprovalsMet {
			diff.NewViolation = true
			for _, r := range d2.Rules {
				if r.Triggered && !r.Met {
					diff.Why = append(diff.Why, fmt.Sprintf("the merge would have violated %s: %s", r.RuleID, r.Shortfall))
				}
			}
		} else {
			diff.GoneViolation = true
			diff.Why = append(diff.Why, "the merge would have held")
		}
	}
	return diff, changed
}

func compareGate(prop *roles.Org, g store.Gate) (GateDiff, bool) {
	d := GateDiff{Gate: g.ID, Ref: fmt.Sprintf("%s@%s → %s", g.Repository, short(g.Commit), g.Environment), StateBefore: g.State}
	res, err := rules.DeployPolicy(prop, g.Repository, g.Environment, g.Excluded, g.CreatedAt)
	if err != nil {
		d.Why = "the proposal owns no team for " + g.Repository + ": no gate at all"
		return d, true
	}
	wasGated := len(g.Approvers) > 0 || g.DecidedBy != "rolekeeper"
	switch {
	case !res.Gated && wasGated:
		d.Why = "would be approved at once: " + res.Reason
		return d, true
	case res.Gated && !wasGated:
		d.Why = "would need an approval from " + res.Role + " (" + res.RuleID + ")"
		d.Violation = g.State == store.GateApproved
		return d, true
	}
	if g.State == store.GateApproved && g.BreakGlass && g.DecidedBy != "" && g.DecidedBy != "admin-token" {
		// The proposal's break-glass rule decides who may break the glass.
		glass := rules.BreakGlassOf(prop, res.Team, g.Environment)
		if !contains(glass.Holders, g.DecidedBy) {
			d.Why = "the break-glass would be refused: " + orNone(glass.Role, "no break-glass rule covers "+g.Environment, "only a "+glass.Role+" may break the glass")
			d.Violation = true
			return d, true
		}
		return d, false
	}
	if g.State != store.GateApproved || g.BreakGlass || g.DecidedBy == "" || g.DecidedBy == "rolekeeper" {
		return d, false
	}
	if ok, why := rules.CanApproveDeploy(res, g.DecidedBy); !ok {
		d.Why = "the approval would not count: " + why
		d.Violation = true
		return d, true
	}
	return d, false
}

// Print writes the result for a person.
func Print(w io.Writer, r *Result) {
	fmt.Fprintf(w, "Replayed %d pull requests, %d deployment gates and %d Jira issues from %s to %s through the proposed roles.\n",
		r.PullRequests, r.Gates, r.Issues, r.Since.Format("2 Jan 2006"), r.Until.Format("2 Jan 2006 15:04"))
	if len(r.PRDiffs) == 0 && len(r.GateDiffs) == 0 && len(r.IssueDiffs) == 0 {
		fmt.Fprintln(w, "Nothing would have differed.")
		return
	}
	newV, goneV := 0, 0
	for _, d := range r.PRDiffs {
		if d.NewViolation {
			newV++
		}
		if d.GoneViolation {
			goneV++
		}
	}
	gateV := 0
	for _, g := range r.GateDiffs {
		if g.Violation {
			gateV++
		}
	}
	fmt.Fprintf(w, "%d pull requests and %d gates would have differed: %d merges would have become violations, %d would have held, %d deployments would have been violations.\n\n",
		len(r.PRDiffs), len(r.GateDiffs), newV, goneV, gateV)
	for _, d := range r.PRDiffs {
		mark := ""
		switch {
		case d.NewViolation:
			mark = " [NEW VIOLATION]"
		case d.GoneViolation:
			mark = " [no longer a violation]"
		}
		fmt.Fprintf(w, "%s%s\n", d.Ref, mark)
		for _, why := range d.Why {
			fmt.Fprintf(w, "  - %s\n", why)
		}
	}
	for _, g := range r.GateDiffs {
		mark := ""
		if g.Violation {
			mark = " [VIOLATION]"
		}
		fmt.Fprintf(w, "gate %s %s (was %s)%s\n  - %s\n", g.Gate, g.Ref, g.StateBefore, mark, g.Why)
	}
	for _, d := range r.IssueDiffs {
		fmt.Fprintf(w, "issue %s\n  - before: %s\n  - after: %s\n", d.Issue, actions(d.Before), actions(d.After))
	}
}

func actions(xs []string) string {
	if len(xs) == 0 {
		return "nothing"
	}
	return strings.Join(xs, "; ")
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// orNone picks the text for an empty or a set role.
func orNone(role, none, some string) string {
	if role == "" {
		return none
	}
	return some
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "nobody"
	}
	return strings.Join(xs, ", ")
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// ParseSince reads "4w", "10d", "36h" or a date (YYYY-MM-DD) into a start
// time before now.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if len(s) >= 2 {
		var n int
		if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == s[:len(s)-1] {
			switch s[len(s)-1] {
			case 'w':
				return now.AddDate(0, 0, -7*n), nil
			case 'd':
				return now.AddDate(0, 0, -n), nil
			case 'h':
				return now.Add(-time.Duration(n) * time.Hour), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a number of weeks, days or hours (4w, 10d, 36h) or a date (2026-11-01)", s)
}
