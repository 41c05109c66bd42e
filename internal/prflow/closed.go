package prflow

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// Finding key prefixes of a merge's verdicts (the key is prefix +
// "ws/slug#id", rules.FindingKey), named here for the tests.
const (
	findingUnapproved = rules.TopicMergeUnapproved + ":"
	findingApproved   = rules.TopicMergeApproved + ":"
	findingUntested   = rules.TopicMergeUntested + ":"
	findingTested     = rules.TopicMergeTested + ":"
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
	if err := p.forgetBranchPushers(ctx); err != nil {
		return p.fail(ctx, err)
	}
	merge := rules.Merge{Repository: p.pr.Repository, Number: p.pr.ID, URL: p.pr.URL, Team: p.team.ID,
		At: p.in.at, Now: p.now, By: p.closer(), Author: p.pr.Author, Approvals: p.pr.Approvals()}
	for _, f := range rules.MergeFindings(p.org, p.d, merge) {
		added, err := p.h.st.AddFinding(ctx, f)
		if err != nil {
			return p.fail(ctx, fmt.Errorf("prflow: record finding %s: %w", f.Key, err))
		}
		p.findings = append(p.findings, f)
		kind := rules.FindingTopic(f.Key)
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

func (p *pass) closerName() string { return rules.ActorName(p.org, p.closer()) }

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

// gated reports whether the team's deployments are gated.
func (p *pass) gated() bool { return rules.Gated(p.org, p.team.ID) }
