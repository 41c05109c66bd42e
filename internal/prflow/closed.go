package prflow

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// Finding key prefixes (the key is prefix + "ws/slug#id").
const (
	findingUnapproved = "merge-unapproved:"
	findingApproved   = "merge-approved:"
	findingUntested   = "merge-untested:"
	findingTested     = "merge-tested:"
)

// closed records the outcome of a merged or declined pull request and, for
// a merge, whether its rules held. Nothing is written upstream.
func (p *pass) closed(ctx context.Context) error {
	if err := p.gather(ctx); err != nil {
		return err
	}
	if !closed(p.pr.State) {
		// The event said closed; Bitbucket, read for the approvals, says
		// open. Nothing is judged on a claim.
		p.log().Warn("closing event for a pull request Bitbucket shows open: ignored")
		return permanentf("prflow: %s#%d: %s event but Bitbucket shows the pull request %s", p.pr.Repository, p.pr.ID, p.in.trigger, p.pr.State)
	}
	if err := p.record(ctx); err != nil {
		return err
	}
	p.observe()
	rec := p.rec
	if p.pr.MergeCommit != "" && !model.SameCommit(rec.MergeCommit, p.pr.MergeCommit) {
		rec.MergeCommit = p.mergeCommit(ctx)
	}
	if id := p.closer().AccountID; id != "" {
		rec.ClosedBy = id
	}
	if rec.ClosedAt.IsZero() {
		rec.ClosedAt = p.in.at
	}
	if err := p.save(ctx); err != nil {
		return p.fail(ctx, err)
	}
	if p.pr.State != model.PRMerged {
		p.note(fmt.Sprintf("%s by %s", strings.ToLower(string(p.pr.State)), p.closerName()))
		return p.finish(ctx)
	}
	p.note("merged by " + p.closerName())
	for _, f := range p.mergeFindings() {
		added, err := p.h.st.AddFinding(ctx, f)
		if err != nil {
			return p.fail(ctx, fmt.Errorf("prflow: record finding %s: %w", f.Key, err))
		}
		p.findings = append(p.findings, f)
		kind, _, _ := strings.Cut(f.Key, ":")
		if added {
			p.note("finding " + kind + " recorded")
		} else {
			p.note("finding " + kind + " already recorded")
		}
	}
	return p.finish(ctx)
}

// closer is who merged or declined the pull request.
func (p *pass) closer() model.Actor {
	if p.pr.ClosedBy != nil && (p.pr.ClosedBy.AccountID != "" || p.pr.ClosedBy.DisplayName != "") {
		return *p.pr.ClosedBy
	}
	if p.in.actor.AccountID != "" || p.in.actor.DisplayName != "" {
		return p.in.actor
	}
	if p.rec != nil && p.rec.ClosedBy != "" {
		return model.Actor{AccountID: p.rec.ClosedBy}
	}
	return model.Actor{}
}

func (p *pass) closerName() string { return p.personName(p.closer()) }

func (p *pass) personName(a model.Actor) string {
	if a.AccountID != "" {
		if person := p.org.PersonByAccount(a.AccountID); person != nil {
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

// mergeFindings says whether a merge held its rules: one finding about the
// approvals (violated or held) when a triggered rule required approvals,
// one about tests when a unit-tests rule triggered. Keys make them
// idempotent.
func (p *pass) mergeFindings() []model.Finding {
	ref := fmt.Sprintf("%s#%d", p.pr.Repository, p.pr.ID)
	base := model.Finding{
		Team:       p.team.ID,
		Subject:    model.SubjectPullRequest,
		Ref:        ref,
		URL:        p.pr.URL,
		OccurredAt: p.in.at,
		RecordedAt: p.now,
		Actor:      p.closer().AccountID,
	}
	merger := p.closerName()
	var review, unmet, tests []rules.RuleResult
	for _, r := range p.d.Rules {
		switch {
		case !r.Triggered:
		case r.Kind == string(roles.KindUnitTests):
			tests = append(tests, r)
		case r.Required > 0:
			review = append(review, r)
			if !r.Met {
				unmet = append(unmet, r)
			}
		}
	}
	var out []model.Finding
	if len(review) > 0 {
		f := base
		if len(unmet) > 0 {
			first := unmet[0]
			for _, r := range unmet {
				if r.Kind == string(roles.KindCodeReview) {
					first = r
					break
				}
			}
			f.Key, f.Kind, f.RuleID = findingUnapproved+ref, first.Kind, first.RuleID
			parts := make([]string, 0, len(unmet))
			for _, r := range unmet {
				parts = append(parts, p.ruleLabel(r)+": "+orElse(r.Shortfall, "required approvals missing"))
			}
			f.Reason = fmt.Sprintf("merged by %s without the required approvals: %s", merger, strings.Join(parts, "; "))
			if who := p.selfApprover(); who != "" {
				f.Reason += "; approved only by its author, " + who
			}
			f.Details = p.approvalDetails(unmet)
		} else {
			f.Key, f.Kind, f.RuleID, f.Held = findingApproved+ref, review[0].Kind, review[0].RuleID, true
			parts := make([]string, 0, len(review))
			for _, r := range review {
				parts = append(parts, p.ruleLabel(r)+": approved by "+p.names(r.ApprovedBy))
			}
			f.Reason = fmt.Sprintf("merged by %s with the required approvals: %s", merger, strings.Join(parts, "; "))
		}
		out = append(out, f)
	}
	if len(tests) > 0 {
		f := base
		f.Kind, f.RuleID = tests[0].Kind, tests[0].RuleID
		var missing []string
		for _, r := range tests {
			if !r.Met {
				missing = append(missing, p.ruleLabel(r)+": "+orElse(r.Shortfall, "no test changed"))
			}
		}
		if len(missing) > 0 {
			f.Key = findingUntested + ref
			f.Reason = fmt.Sprintf("merged by %s with source changed and no test: %s", merger, strings.Join(missing, "; "))
		} else {
			f.Key, f.Held = findingTested+ref, true
			f.Reason = fmt.Sprintf("merged by %s with tests changed alongside the source: %s", merger, p.ruleLabel(tests[0]))
		}
		out = append(out, f)
	}
	return out
}

// ruleLabel names a rule with its role and responsibility:
// `technical-lead/code-review (Technical lead: "Reviews code …")`.
func (p *pass) ruleLabel(r rules.RuleResult) string {
	title := r.Role
	if role := p.org.Role(r.Role); role != nil && role.Title != "" {
		title = role.Title
	}
	return fmt.Sprintf("%s (%s: %q)", r.RuleID, title, r.Responsibility)
}

// selfApprover names the author when the only approvals came from them.
func (p *pass) selfApprover() string {
	author := p.pr.Author.AccountID
	n, self := 0, false
	for _, a := range p.pr.Approvals() {
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
		return p.personName(p.pr.Author)
	}
	return ""
}

func (p *pass) approvalDetails(unmet []rules.RuleResult) string {
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

func (p *pass) names(ids []string) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, p.personName(model.Actor{AccountID: id}))
	}
	if len(out) == 0 {
		return "nobody (no approval required)"
	}
	return strings.Join(out, ", ")
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mergeCommit is the merge commit to record. Payloads carry 12 hex, and the
// store finds pull requests by full hashes only (a 12-hex twin is another
// commit): a deployment gate looks a deployed merge commit up that way. So
// for a team whose deployments are gated the hash is resolved (one read);
// elsewhere nothing looks it up, and the abbreviation is kept. A failed
// read keeps it too (it matches nothing) and the merge is judged all the
// same.
func (p *pass) mergeCommit(ctx context.Context) string {
	c := strings.ToLower(p.pr.MergeCommit)
	if model.IsFullCommit(c) || !p.gated() {
		return c
	}
	full, err := p.h.host.ResolveCommit(ctx, p.pr.Repository, c)
	p.calls++
	if err != nil || !model.IsFullCommit(full) || !model.SameCommit(full, c) {
		p.log().Warn("merge commit not resolved: kept abbreviated", zap.String("commit", c), zap.String("resolved", full), zap.Error(err))
		return c
	}
	return strings.ToLower(full)
}

// gated reports whether a deploy-approval rule applies to the team.
func (p *pass) gated() bool {
	for _, r := range p.org.Rules {
		if r.Kind == roles.KindDeployApproval && r.AppliesToTeam(p.team.ID) {
			return true
		}
	}
	return false
}
