package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Merge is what the workflow knows of a merged pull request, besides the
// decision evaluated on its final state.
type Merge struct {
	Repository string
	Number     int
	URL        string
	Team       string
	At         time.Time   // when it was merged
	Now        time.Time   // when it is recorded
	By         model.Actor // who merged it
	Author     model.Actor
	// Approvals are the approvals as the pull request shows them (to tell
	// a merge approved only by its author).
	Approvals []model.Approval
}

// MergeCheck judges a merged pull request on the results of the kinds
// sharing it: one finding, held or violated, keyed by topic and pull
// request.
type MergeCheck struct {
	Held, Violated string // finding topics
	// judges picks the triggered results the check looks at.
	judges func(r RuleResult) bool
	// judge fills the finding's kind, rule, reason and details, and says
	// whether the merge held.
	judge func(m *mergeCtx, rs []RuleResult, f *model.Finding) (held bool)
}

// mergeCtx is what a MergeCheck's judge reads.
type mergeCtx struct {
	org    *roles.Org
	m      Merge
	merger string // display name of who merged
}

// MergeFindings judges a merged pull request on the decision evaluated
// from its final state: one finding per check of the triggered kinds
// (approvals: merge-approved or merge-unapproved; tests: merge-tested or
// merge-untested), in registry order. Keys make them idempotent.
func MergeFindings(org *roles.Org, d Decision, m Merge) []model.Finding {
	ref := fmt.Sprintf("%s#%d", m.Repository, m.Number)
	base := model.Finding{
		Team:       m.Team,
		Subject:    model.SubjectPullRequest,
		Ref:        ref,
		URL:        m.URL,
		OccurredAt: m.At,
		RecordedAt: m.Now,
		Actor:      m.By.AccountID,
	}
	c := &mergeCtx{org: org, m: m, merger: ActorName(org, m.By)}
	var out []model.Finding
	var done []*MergeCheck
	for _, k := range Registry {
		check := k.PR.merge()
		if check == nil || containsCheck(done, check) {
			continue
		}
		done = append(done, check)
		var rs []RuleResult
		for _, r := range d.Rules {
			if r.Triggered && prKinds[roles.Kind(r.Kind)].merge() == check && check.judges(r) {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		f := base
		f.Held = check.judge(c, rs, &f)
		topic := check.Violated
		if f.Held {
			topic = check.Held
		}
		f.Key = FindingKey(topic, ref)
		out = append(out, f)
	}
	return out
}

func (k *PRKind) merge() *MergeCheck {
	if k == nil {
		return nil
	}
	return k.Merge
}

func containsCheck(list []*MergeCheck, c *MergeCheck) bool {
	for _, v := range list {
		if v == c {
			return true
		}
	}
	return false
}

// approvalsAtMerge judges the review rules that required approvals.
var approvalsAtMerge = &MergeCheck{
	Held: TopicMergeApproved, Violated: TopicMergeUnapproved,
	judges: func(r RuleResult) bool { return r.Required > 0 },
	judge: func(c *mergeCtx, review []RuleResult, f *model.Finding) bool {
		var unmet []RuleResult
		for _, r := range review {
			if !r.Met {
				unmet = append(unmet, r)
			}
		}
		if len(unmet) == 0 {
			f.Kind, f.RuleID = review[0].Kind, review[0].RuleID
			parts := make([]string, 0, len(review))
			for _, r := range review {
				parts = append(parts, resultLabel(c.org, r)+": approved by "+c.names(r.ApprovedBy))
			}
			f.Reason = fmt.Sprintf("merged by %s with the required approvals: %s", c.merger, strings.Join(parts, "; "))
			return true
		}
		first := unmet[0]
		for _, r := range unmet {
			if r.Kind == string(roles.KindCodeReview) {
				first = r
				break
			}
		}
		f.Kind, f.RuleID = first.Kind, first.RuleID
		parts := make([]string, 0, len(unmet))
		for _, r := range unmet {
			parts = append(parts, resultLabel(c.org, r)+": "+orDefault(r.Shortfall, "required approvals missing"))
		}
		f.Reason = fmt.Sprintf("merged by %s without the required approvals: %s", c.merger, strings.Join(parts, "; "))
		if who := c.selfApprover(); who != "" {
			f.Reason += "; approved only by its author, " + who
		}
		f.Details = approvalDetails(unmet)
		return false
	},
}

// testsAtMerge judges the unit-tests rules that triggered.
var testsAtMerge = &MergeCheck{
	Held: TopicMergeTested, Violated: TopicMergeUntested,
	judges: func(RuleResult) bool { return true },
	judge: func(c *mergeCtx, tests []RuleResult, f *model.Finding) bool {
		f.Kind, f.RuleID = tests[0].Kind, tests[0].RuleID
		var missing []string
		for _, r := range tests {
			if !r.Met {
				missing = append(missing, resultLabel(c.org, r)+": "+orDefault(r.Shortfall, "no test changed"))
			}
		}
		if len(missing) > 0 {
			f.Reason = fmt.Sprintf("merged by %s with source changed and no test: %s", c.merger, strings.Join(missing, "; "))
			return false
		}
		f.Reason = fmt.Sprintf("merged by %s with tests changed alongside the source: %s", c.merger, resultLabel(c.org, tests[0]))
		return true
	},
}

// selfApprover names the author when the only approvals came from them.
func (c *mergeCtx) selfApprover() string {
	author := c.m.Author.AccountID
	n, self := 0, false
	for _, a := range c.m.Approvals {
		if a.State != model.ReviewApproved {
			continue
		}
		n++
		if a.AccountID == author && author != "" {
			self = true
		} else {
			return ""
		}
	}
	if n > 0 && self {
		return ActorName(c.org, c.m.Author)
	}
	return ""
}

func (c *mergeCtx) names(ids []string) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, ActorName(c.org, model.Actor{AccountID: id}))
	}
	if len(out) == 0 {
		return "nobody (no approval required)"
	}
	return strings.Join(out, ", ")
}

// approvalDetails lists the approvals that did not count, each once.
func approvalDetails(unmet []RuleResult) string {
	var parts []string
	seen := map[string]bool{}
	for _, r := range unmet {
		for _, s := range r.Ignored {
			if !seen[s] {
				seen[s] = true
				parts = append(parts, s)
			}
		}
	}
	if len(parts) == 0 {
		return "no approval counted"
	}
	return strings.Join(parts, "; ")
}

// resultLabel names a rule with its role and responsibility:
// `technical-lead/code-review (Technical lead: "Reviews code …")`.
func resultLabel(org *roles.Org, r RuleResult) string {
	title := r.Role
	if role := org.Role(r.Role); role != nil && role.Title != "" {
		title = role.Title
	}
	return fmt.Sprintf("%s (%s: %q)", r.RuleID, title, r.Responsibility)
}

// ActorName is how findings and notes name an account: the person's name
// in roles.yaml, else the name Bitbucket gave, else the account id, else
// "someone".
func ActorName(org *roles.Org, a model.Actor) string {
	if a.AccountID != "" && org != nil {
		if person := org.PersonByAccount(a.AccountID); person != nil {
			return person.DisplayName()
		}
	}
	switch {
	case a.DisplayName != "":
		return a.DisplayName
	case a.AccountID != "":
		return a.AccountID
	}
	return "someone"
}
