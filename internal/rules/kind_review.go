package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// The review kinds: code-review asks reviewers of the role on every pull
// request of the team, path-review only when a changed file matches its
// paths. Both count approvals of holders only (never the author's nor a
// commit author's), roll up into rolekeeper-review and are judged together
// at the merge (merge-approved / merge-unapproved).
var codeReviewKind = KindInfo{
	People: true,
	Kind:   roles.KindCodeReview,
	Doc:    "reviewers of the role on every pull request of the team",
	Action: "Review the change after the fact and record the outcome on the pull request.",
	Spec: &roles.KindSpec{
		Kind:        roles.KindCodeReview,
		Settings:    []string{"reviewers", "approvals", "invalidate_on_push"},
		Apply:       applyReview,
		TeamHolders: true,
	},
	PR: &PRKind{
		Status:   StatusReview,
		PushTime: true,
		Merge:    approvalsAtMerge,
		evaluate: (*evaluation).codeReview,
	},
}

var pathReviewKind = KindInfo{
	People: true,
	Kind:   roles.KindPathReview,
	Doc:    "the same, only when a changed file matches paths",
	Action: "Review the change to the guarded paths after the fact and record the outcome.",
	Spec: &roles.KindSpec{
		Kind:     roles.KindPathReview,
		Settings: []string{"paths", "reviewers", "approvals", "invalidate_on_push"},
		Apply: func(s *roles.Settings, r *roles.Rule) {
			if s.Required("paths", `a list of globs, like ["helm/**", "**/Dockerfile"]`) {
				r.Paths = s.Globs("paths", nil)
			}
			applyReview(s, r)
		},
		TeamHolders: true,
	},
	PR: &PRKind{
		Status:   StatusReview,
		Files:    true,
		PushTime: true,
		Merge:    approvalsAtMerge,
		evaluate: (*evaluation).pathReview,
	},
}

// applyReview reads a review rule's settings: reviewers asked (default
// 1), approvals required of the role (default 1; 0 is advisory) and
// invalidate_on_push (default false, as Bitbucket). Asking fewer people
// than the approvals it waits for loads, with a warning.
func applyReview(s *roles.Settings, r *roles.Rule) {
	r.Reviewers = s.Int("reviewers", 1, 1, math.MaxInt)
	r.Approvals = s.Int("approvals", 1, 0, math.MaxInt)
	r.InvalidateOnPush = s.Bool("invalidate_on_push", false)
	if r.Approvals > r.Reviewers {
		s.Warnf("approvals", "approvals (%d) exceed reviewers (%d): the rule asks %d but waits for approvals from %d of the role",
			r.Approvals, r.Reviewers, r.Reviewers, r.Approvals)
	}
}

// reviewResult is a review rule's result before it is judged.
func reviewResult(p *plan) RuleResult {
	r := p.rule
	return RuleResult{
		RuleID:         r.ID,
		Kind:           string(r.Kind),
		Role:           r.Role,
		Responsibility: r.Responsibility,
		Required:       max(r.Approvals, 0),
		Notes:          append([]string(nil), p.notes...),
	}
}

// codeReview evaluates a code-review rule: it applies to every pull
// request of the team.
func (ev *evaluation) codeReview(p *plan) RuleResult {
	rr := reviewResult(p)
	rr.Reason = p.always
	return ev.review(p, rr)
}

// pathReview evaluates a path-review rule: it applies when a changed file
// matches its paths.
func (ev *evaluation) pathReview(p *plan) RuleResult {
	rr := reviewResult(p)
	var matched []string
	count := 0
	for _, f := range ev.s.ChangedFiles {
		if p.paths.match(f) {
			count++
			if matched == nil {
				matched = make([]string, 0, min(len(ev.s.ChangedFiles), maxMatchedPaths))
			}
			if len(matched) < maxMatchedPaths {
				matched = append(matched, f)
			}
		}
	}
	if count == 0 {
		rr.Met = true
		rr.Reason = p.label + ": not triggered, no changed file matches " + p.globs
		return rr
	}
	rr.MatchedPaths = matched
	rr.Reason = fmt.Sprintf("%s: %s %s %s (%s)", p.label, countNoun(count, "changed file"),
		plural(count, "matches", "match"), p.globs, listPaths(matched, count))
	return ev.review(p, rr)
}

// review judges a triggered review rule: its approvals, and whom to ask.
//
// Reviewer policy: people already on the pull request who are eligible are
// kept first (sticky); then anyone already asked for an earlier rule of the
// same decision who is eligible here is reused, so one person can answer for
// two rules (a lead who is also the infrastructure owner reviews once); only
// then are new people asked, least loaded first, the load including the
// picks of this decision so that two rules needing new people spread them.
// Nobody new is asked for a rule whose required approvals are already in.
func (ev *evaluation) review(p *plan, rr RuleResult) RuleResult {
	r := p.rule
	rr.Triggered = true

	// Separation of duties: whoever wrote commits of the pull request is
	// never asked and their approval does not count.
	for _, id := range ev.committers {
		if holds(p.holders, id) {
			rr.Excluded = append(rr.Excluded, ev.name(id, "")+" "+committerWhy)
		}
	}

	// Approvals: only holders of the role for the team count, never the
	// author nor a commit author, and (invalidate_on_push) only those given
	// after the last push; a standing change request from a holder blocks
	// the rule.
	var blocking []string
	for _, a := range ev.approvals {
		who := ev.name(a.AccountID, a.Name)
		switch {
		case a.AccountID != "" && a.AccountID == ev.author:
			if a.State == model.ReviewApproved {
				rr.Ignored = append(rr.Ignored, who+" approved their own pull request: a self-approval does not count")
			}
		case a.State == model.ReviewApproved && containsString(ev.committers, a.AccountID):
			rr.Ignored = append(rr.Ignored, fmt.Sprintf("approval by %s does not count: %s wrote commits of this pull request (separation of duties)", who, who))
		case a.State == model.ReviewApproved && r.InvalidateOnPush && holds(p.holders, a.AccountID) && !ev.afterLastPush(a):
			rr.Ignored = append(rr.Ignored, fmt.Sprintf("approval by %s does not count: %s (invalidate_on_push)", who, ev.staleWhy(a)))
		case !holds(p.holders, a.AccountID):
			if a.State == model.ReviewApproved {
				rr.Ignored = append(rr.Ignored, fmt.Sprintf("approval by %s does not count: not %s", who, p.why))
			} else {
				rr.Ignored = append(rr.Ignored, fmt.Sprintf("changes requested by %s do not block this rule: not %s", who, p.why))
			}
		case a.State == model.ReviewApproved:
			rr.ApprovedBy = append(rr.ApprovedBy, a.AccountID)
			rr.ApprovedNames = append(rr.ApprovedNames, who)
		default:
			blocking = append(blocking, who)
		}
	}
	needed := rr.Required - len(rr.ApprovedBy)
	if rr.Required == 0 {
		rr.Met = true
		if len(blocking) > 0 {
			rr.Notes = append(rr.Notes, "changes requested by "+strings.Join(blocking, ", ")+" (advisory rule: it does not block)")
		}
	} else {
		rr.Met = needed <= 0 && len(blocking) == 0
	}
	if !rr.Met {
		var parts []string
		if len(blocking) > 0 {
			parts = append(parts, "changes requested by "+strings.Join(blocking, ", "))
		}
		if needed > 0 {
			parts = append(parts, fmt.Sprintf("needs %s from %s", countNoun(needed, "approval"), r.Role))
			if able := ev.ableToApprove(p, rr.ApprovedBy); able < needed {
				parts = append(parts, fmt.Sprintf("only %d other %s can give it", able, plural(able, "holder", "holders")))
			}
		}
		rr.Shortfall = strings.Join(parts, "; ")
	}

	if !ev.request || r.Reviewers <= 0 || (rr.Met && rr.Required > 0) {
		return rr
	}
	exclude := append([]string{ev.author}, ev.committers...)
	var reasons map[string]string
	for _, id := range ev.committers {
		if reasons == nil {
			reasons = map[string]string{}
		}
		reasons[id] = committerWhy
	}
	opt := ChooseOptions{
		Exclude:        exclude,
		ExcludeWhy:     "is the author of the pull request",
		ExcludeReasons: reasons,
		Keep:           ev.s.Reviewers,
		Prefer:         ev.asked,
		PreferWhy:      "already asked for another rule of this pull request",
		Seed:           ev.seed,
		Now:            ev.s.Now,
		Why:            p.why,
	}
	picks, notes := choose(p.holders, r.Reviewers, &opt, ev.load)
	rr.Picks = picks
	rr.Notes = append(rr.Notes, notes...)
	for _, pk := range picks {
		ev.addRequest(pk, p)
	}
	return rr
}

// committerWhy completes "<name> …" for a commit author left out.
const committerWhy = "wrote commits of this pull request: not asked, and an approval would not count (separation of duties)"

// afterLastPush reports whether an approval was given after the source
// commit was pushed, both by Bitbucket's clock.
func (ev *evaluation) afterLastPush(a model.Approval) bool {
	return !ev.s.LastPush.IsZero() && !a.At.IsZero() && a.At.After(ev.s.LastPush)
}

func (ev *evaluation) staleWhy(a model.Approval) string {
	switch {
	case ev.s.LastPush.IsZero():
		return "the time of the last push is unknown"
	case a.At.IsZero():
		return "the time of the approval is unknown"
	}
	return fmt.Sprintf("given %s, before the last push (%s)", a.At.UTC().Format(time.RFC3339), ev.s.LastPush.UTC().Format(time.RFC3339))
}

// ableToApprove counts holders who could still approve: not the author nor
// a commit author, with an account id, not already counted. Away people
// count: they may come back before the merge.
func (ev *evaluation) ableToApprove(p *plan, approved []string) int {
	n := 0
	for _, h := range p.holders {
		if h.AccountID != "" && h.AccountID != ev.author && !containsString(ev.committers, h.AccountID) && !containsString(approved, h.AccountID) {
			n++
		}
	}
	return n
}

func holds(holders []*roles.Person, accountID string) bool {
	if accountID == "" {
		return false
	}
	for _, h := range holders {
		if h.AccountID == accountID {
			return true
		}
	}
	return false
}

// reviewStatus summarises the review rules into rolekeeper-review.
func reviewStatus(rs []RuleResult, team string) Status {
	st := Status{Key: StatusReview}
	applies := false
	var blocked []string
	var roleOrder []string
	need := map[string]int{}
	var approvers []string
	for i := range rs {
		r := &rs[i]
		if statusOf(r.Kind) != StatusReview {
			continue
		}
		applies = true
		if !r.Triggered {
			continue
		}
		for _, n := range r.ApprovedNames {
			if !containsString(approvers, n) {
				approvers = append(approvers, n)
			}
		}
		if r.Met {
			continue
		}
		// The same role in two rules: one approval may satisfy both, so
		// the role needs the larger count, not the sum.
		if n := r.Required - len(r.ApprovedBy); n > 0 {
			if _, ok := need[r.Role]; !ok {
				roleOrder = append(roleOrder, r.Role)
			}
			need[r.Role] = max(need[r.Role], n)
		}
		if r.Shortfall != "" && strings.HasPrefix(r.Shortfall, "changes requested by ") {
			b, _, _ := strings.Cut(r.Shortfall, ";")
			if !containsString(blocked, b) {
				blocked = append(blocked, b)
			}
		}
	}
	switch {
	case !applies:
		st.State = StateSuccessful
		st.Description = "no review rule applies to " + team
	case len(roleOrder) == 0 && len(blocked) == 0:
		st.State = StateSuccessful
		if len(approvers) == 0 {
			st.Description = "no approval required"
		} else {
			st.Description = "approved by " + strings.Join(approvers, ", ")
		}
	default:
		st.State = StateInProgress
		var parts []string
		parts = append(parts, blocked...)
		if len(roleOrder) > 0 {
			var b strings.Builder
			for i, role := range roleOrder {
				if i == 0 {
					b.WriteString("needs " + countNoun(need[role], "approval") + " from " + role)
				} else {
					b.WriteString(", " + strconv.Itoa(need[role]) + " from " + role)
				}
			}
			parts = append(parts, b.String())
		}
		st.Description = strings.Join(parts, "; ")
	}
	st.Description = truncate(st.Description, maxDescription)
	return st
}
