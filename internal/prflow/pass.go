package prflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// pass is one evaluation of one pull request: what it read, decided and
// did. It lives for one call and never holds a context.
type pass struct {
	h    *Handler
	org  *roles.Org
	team *roles.Team
	pr   model.PullRequest
	in   input
	now  time.Time

	rec    *store.PRRecord
	commit string // best-known hash of the source commit (40 hex once known)

	read     bool             // the pull request was read from Bitbucket in this pass
	facts    []model.Approval // verified approvals and change requests decided from
	authors  []model.Actor    // commit authors of the head (accounts Bitbucket mapped)
	lastPush time.Time        // when the head was pushed (zero: not read)
	snap     rules.PRSnapshot
	others   map[string]int // open review requests of other pull requests
	doneAt   time.Time      // updated_on of the state carried out (the PUT's own included)

	evaluated  bool
	d          rules.Decision
	decisionID int64
	publicID   string // the decision's public id, in its link
	outcome    []string
	changed    bool
	calls      int
	findings   []model.Finding
	deferred   []error // permanent errors of a step, returned at the end
}

func (p *pass) result() Result {
	r := Result{Team: p.team.ID, DecisionID: p.decisionID, Outcome: p.outcomeText(), Changed: p.changed, Calls: p.calls}
	if p.evaluated {
		r.Decision = p.d
	}
	r.Findings = p.findings
	return r
}

func (p *pass) log() *zap.Logger {
	return p.h.log.With(zap.String("repo", p.pr.Repository), zap.Int("pr", p.pr.ID),
		zap.String("event", p.in.trigger), zap.String("delivery_id", p.in.delivery), zap.String("team", p.team.ID))
}

func (p *pass) load(ctx context.Context) error {
	rec, err := p.h.st.GetPR(ctx, p.pr.Repository, p.pr.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = &store.PRRecord{Repository: p.pr.Repository, ID: p.pr.ID}
	case err != nil:
		return fmt.Errorf("prflow: load %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	if rec.Statuses == nil {
		rec.Statuses = map[string]string{}
	}
	p.rec = rec
	p.commit = longer(p.pr.SourceCommit, rec.SourceCommit)
	if p.commit == "" {
		p.commit = rec.SourceCommit
	}
	if p.in.at.IsZero() {
		p.in.at = p.now
		if closed(p.pr.State) && !p.pr.UpdatedAt.IsZero() {
			p.in.at = p.pr.UpdatedAt
		}
	}
	return nil
}

// stale reports an event about an open pull request the record already
// knows as closed (Bitbucket Cloud does not reopen pull requests).
func (p *pass) stale() bool {
	return closed(p.rec.State) && !closed(p.pr.State)
}

// superseded says why an event brings nothing the record has not already
// decided from ("" when it may): a body older than the state last decided
// from never undoes it, and a body of that same state with the same review
// facts is a redelivery or the echo of rolekeeper's own change. Times are
// Bitbucket's updated_on.
func (p *pass) superseded() string {
	if p.in.truth || p.in.fromRecord || p.rec.UpdatedAt.IsZero() || p.pr.UpdatedAt.IsZero() {
		return ""
	}
	// The store keeps milliseconds; Bitbucket sends microseconds.
	got, seen := p.pr.UpdatedAt.Truncate(time.Millisecond), p.rec.UpdatedAt.Truncate(time.Millisecond)
	if got.Before(seen) {
		return fmt.Sprintf("event older than the state already decided from (updated_on %s before %s)",
			p.pr.UpdatedAt.UTC().Format(time.RFC3339Nano), p.rec.UpdatedAt.UTC().Format(time.RFC3339Nano))
	}
	if got.Equal(seen) && (p.pr.State == "" || p.pr.State == p.rec.State) &&
		model.SameCommit(p.pr.SourceCommit, p.rec.SourceCommit) && sameFacts(withClaim(p.pr.Approvals(), p.in.claim), p.rec.Approvals) {
		return "nothing new: the state already decided from (a redelivery, or the echo of rolekeeper's own change)"
	}
	return ""
}

// withClaim is the review state a body shows once its event's own claim
// (approved, withdrawn, …) is applied: only compared with the record, to
// recognise a redelivery, never decided from.
func withClaim(facts []model.Approval, claim *model.Approval) []model.Approval {
	if claim == nil || claim.AccountID == "" {
		return facts
	}
	out := make([]model.Approval, 0, len(facts)+1)
	for _, f := range facts {
		if f.AccountID != claim.AccountID {
			out = append(out, f)
		}
	}
	if claim.State == model.ReviewApproved || claim.State == model.ReviewChangesRequested {
		out = append(out, *claim)
	}
	return out
}

func closed(s model.PRState) bool {
	return s == model.PRMerged || s == model.PRDeclined || s == model.PRSuperseded
}

// payloadOlder reports whether the pull request given is older than what
// the record last saw (a late redelivery, or our own reviewers PUT since).
func (p *pass) payloadOlder() bool {
	return !p.pr.UpdatedAt.IsZero() && p.pr.UpdatedAt.Before(p.rec.UpdatedAt)
}

// open evaluates an open pull request and carries the decision out.
func (p *pass) open(ctx context.Context) error {
	if err := p.gather(ctx); err != nil {
		return err
	}
	if err := p.record(ctx); err != nil {
		return err
	}
	p.observe()
	if err := p.save(ctx); err != nil {
		return p.fail(ctx, err)
	}
	for _, step := range []func(context.Context) error{p.reviewers, p.statuses, p.comment} {
		if err := step(ctx); err != nil {
			if !permanent(err) {
				return p.fail(ctx, err)
			}
			// A request that can never succeed (a reviewer Bitbucket
			// refuses) must not keep the other steps from happening.
			p.deferred = append(p.deferred, err)
			p.note("error: " + err.Error())
		}
	}
	return p.finish(ctx)
}

// decide builds the snapshot from the facts gathered and runs the engine.
// It is pure: gather calls it again after reading more.
func (p *pass) decide(files []string) {
	state := p.pr.State
	if state == "" {
		state = model.PROpen
	}
	p.snap = rules.PRSnapshot{
		Repository:    p.pr.Repository,
		Number:        p.pr.ID,
		Title:         p.pr.Title,
		Author:        p.pr.Author,
		Draft:         p.pr.Draft,
		State:         state,
		SourceCommit:  p.commit,
		ChangedFiles:  files,
		Reviewers:     accountIDs(p.pr.Reviewers),
		Approvals:     append([]model.Approval(nil), p.facts...),
		CommitAuthors: append([]model.Actor(nil), p.authors...),
		LastPush:      p.lastPush,
		Load:          p.others,
		Now:           p.now,
		AssignDrafts:  p.h.assignDrafts,
	}
	p.d = p.h.engineFor(p.org).Evaluate(p.snap)
	p.evaluated = true
}

// reviewLoad counts the open review requests of other pull requests (the
// store keeps the count), so that re-evaluating this one gives the same
// picks. Nobody is asked on a closed one.
func (p *pass) reviewLoad(ctx context.Context) error {
	if closed(p.pr.State) {
		return nil
	}
	load, err := store.OpenReviews(ctx, p.h.st, p.pr.Repository, p.pr.ID)
	if err != nil {
		return fmt.Errorf("prflow: review load: %w", err)
	}
	p.others = load
	return nil
}

// record stores the decision with the snapshot it was made from.
func (p *pass) record(ctx context.Context) error {
	p.h.m.decided(&p.d)
	dj, err := json.Marshal(p.d)
	if err != nil {
		return fmt.Errorf("prflow: encode decision: %w", err)
	}
	sj, err := json.Marshal(p.snap)
	if err != nil {
		return fmt.Errorf("prflow: encode snapshot: %w", err)
	}
	rec := &store.DecisionRecord{
		Kind:       model.SubjectPullRequest,
		Repository: p.pr.Repository,
		PR:         p.pr.ID,
		Commit:     p.commit,
		Team:       p.team.ID,
		Trigger:    p.in.trigger,
		DeliveryID: p.in.delivery,
		Summary:    p.summary(),
		Decision:   dj,
		Snapshot:   sj,
		Outcome:    "in progress",
		CreatedAt:  p.now,
	}
	id, err := p.h.st.SaveDecision(ctx, rec)
	if err != nil {
		return fmt.Errorf("prflow: save decision: %w", err)
	}
	p.decisionID, p.publicID = id, rec.PublicID
	return nil
}

// files returns the changed paths of the source commit: the stored ones
// when the diffstat was read for this commit, else the diffstat (one read).
// Teams with no rule that looks at paths need none: no read at all.
func (p *pass) files(ctx context.Context) ([]string, error) {
	rec := p.rec
	known := rec.DiffCommit != "" && (p.commit == "" || model.SameCommit(rec.DiffCommit, p.commit))
	// Retargeting a pull request changes its diff without moving its head.
	retargeted := rec.DestinationBranch != "" && p.pr.DestinationBranch != "" && rec.DestinationBranch != p.pr.DestinationBranch
	if known && !retargeted {
		return rec.ChangedFiles, nil
	}
	if !p.needsFiles() {
		return nil, nil
	}
	cf, err := p.diffStat(ctx)
	p.calls++
	if err != nil {
		return nil, fmt.Errorf("prflow: diffstat of %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	paths := make([]string, 0, len(cf))
	seen := make(map[string]bool, len(cf))
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			paths = append(paths, s)
		}
	}
	for _, f := range cf {
		add(f.Path)
		add(f.OldPath)
	}
	rec.DiffCommit, rec.ChangedFiles = p.commit, paths
	return paths, nil
}

// diffStatLinker is a Host that can follow a pull request's own diffstat
// link (internal/bitbucket's client): one request instead of the 302 and
// its target.
type diffStatLinker interface {
	PullRequestDiffStatAt(ctx context.Context, repo string, id int, link string) ([]model.ChangedFile, error)
}

// diffStat reads the changed files of the head: through the link of the
// pull request Bitbucket gave (a signed body or a read) when that pull
// request's head is the head decided on (the link names its revspec), else
// through the pull request's diffstat redirect.
func (p *pass) diffStat(ctx context.Context) ([]model.ChangedFile, error) {
	if l, ok := p.h.host.(diffStatLinker); ok && p.pr.DiffStatURL != "" && p.commit != "" &&
		model.SameCommit(p.pr.SourceCommit, p.commit) {
		return l.PullRequestDiffStatAt(ctx, p.pr.Repository, p.pr.ID, p.pr.DiffStatURL)
	}
	return p.h.host.PullRequestDiffStat(ctx, p.pr.Repository, p.pr.ID)
}

// needsFiles reports whether a rule applying to the team reads the
// changed files.
func (p *pass) needsFiles() bool { return p.h.engineFor(p.org).NeedsFiles(p.team.ID) }

// observe copies what the pull request and the decision say into the
// record.
func (p *pass) observe() {
	rec, pr := p.rec, &p.pr
	older := p.payloadOlder()
	rec.Team = p.team.ID
	if !older || rec.Title == "" {
		rec.Title = pr.Title
		rec.Draft = pr.Draft
		rec.Reviewers = accountIDs(pr.Reviewers)
	}
	p.doneAt = later(p.doneAt, pr.UpdatedAt)
	if pr.Author.AccountID != "" {
		rec.AuthorAccountID = pr.Author.AccountID
	}
	if pr.State != "" {
		rec.State = pr.State
	} else if rec.State == "" {
		rec.State = model.PROpen
	}
	if pr.DestinationBranch != "" {
		rec.DestinationBranch = pr.DestinationBranch
	}
	if !pr.CreatedAt.IsZero() {
		rec.CreatedAt = pr.CreatedAt
	}
	if p.commit != "" && !model.SameCommit(rec.SourceCommit, p.commit) {
		// A new head: nothing has been posted on it yet.
		for k := range rec.Statuses {
			if strings.HasPrefix(k, "rolekeeper-") {
				delete(rec.Statuses, k)
			}
		}
	}
	if p.commit != "" {
		rec.SourceCommit = p.commit
	}
	// Only verified facts are kept: what the next pass may decide from.
	rec.Approvals = append([]model.Approval(nil), p.facts...)
	for _, a := range rec.Approvals {
		if a.AccountID == "" || a.AccountID == rec.AuthorAccountID {
			continue
		}
		at := a.At
		if at.IsZero() {
			at = p.in.at
		}
		if rec.FirstReviewAt.IsZero() || at.Before(rec.FirstReviewAt) {
			rec.FirstReviewAt = at
		}
	}
	rec.ReviewMet = p.d.ApprovalsMet
	if rec.ApprovedAt.IsZero() && p.d.NeedsApproval() && p.d.ApprovalsMet {
		rec.ApprovedAt = p.approvedAt()
	}
	rec.SeenAt = p.now
}

// approvedAt is when the last approval that counts came in.
func (p *pass) approvedAt() time.Time {
	counted := map[string]bool{}
	for _, r := range p.d.Rules {
		for _, id := range r.ApprovedBy {
			counted[id] = true
		}
	}
	var last time.Time
	for _, a := range p.rec.Approvals {
		if counted[a.AccountID] && a.At.After(last) {
			last = a.At
		}
	}
	if last.IsZero() {
		return p.in.at
	}
	return last
}

func (p *pass) save(ctx context.Context) error {
	if err := p.h.st.UpsertPR(ctx, p.rec); err != nil {
		return fmt.Errorf("prflow: save %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	return nil
}

func (p *pass) note(s string) { p.outcome = append(p.outcome, s) }

func (p *pass) outcomeText() string {
	if len(p.outcome) == 0 {
		if p.h.dryRun {
			return "dry-run: nothing to change"
		}
		return "nothing to change"
	}
	s := strings.Join(p.outcome, "; ")
	if p.h.dryRun {
		return "dry-run: " + s
	}
	return s
}

// fail records the error as the decision's outcome and returns it.
func (p *pass) fail(ctx context.Context, err error) error {
	if p.decisionID != 0 {
		p.note("error: " + err.Error())
		if oerr := p.h.st.SetOutcome(ctx, p.decisionID, p.outcomeText()); oerr != nil {
			p.log().Warn("outcome not recorded", zap.Error(oerr))
		}
	}
	return err
}

func (p *pass) finish(ctx context.Context) error {
	if err := p.h.st.SetOutcome(ctx, p.decisionID, p.outcomeText()); err != nil {
		return errors.Join(append(p.deferred, fmt.Errorf("prflow: record outcome: %w", err))...)
	}
	if len(p.deferred) == 0 && p.doneAt.After(p.rec.UpdatedAt) {
		// Everything decided for this state is done upstream: events of
		// this state or older now cost nothing (superseded). A pass that
		// failed leaves it, so that its retry (and the audit) redo it.
		p.rec.UpdatedAt = p.doneAt
		if err := p.save(ctx); err != nil {
			return err
		}
	}
	return errors.Join(p.deferred...)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// summary is the decision in one line.
func (p *pass) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%d", p.pr.Repository, p.pr.ID)
	if p.commit != "" {
		fmt.Fprintf(&b, " at %s", short(p.commit))
	}
	if closed(p.pr.State) {
		fmt.Fprintf(&b, " %s", strings.ToLower(string(p.pr.State)))
	}
	b.WriteString(": ")
	var parts []string
	for _, s := range p.d.Statuses {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", statusLabel(s.Key), s.State, s.Description))
	}
	if names := pickNames(p.d.Request); len(names) > 0 && !closed(p.pr.State) {
		parts = append(parts, "reviewers "+strings.Join(names, ", "))
	}
	if p.d.Skipped != "" {
		parts = append(parts, p.d.Skipped)
	}
	b.WriteString(strings.Join(parts, "; "))
	return b.String()
}

// statusLabel is a status key without the product prefix: "review".
func statusLabel(key string) string { return strings.TrimPrefix(key, "rolekeeper-") }

// statusName is the status title shown in Bitbucket: "rolekeeper review".
func statusName(key string) string { return strings.ReplaceAll(key, "-", " ") }

// decisionURL is the public page of this pass's decision.
func (p *pass) decisionURL() string { return store.DecisionURL(p.h.publicURL, p.publicID) }

func accountIDs(as []model.Actor) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		if a.AccountID != "" {
			out = append(out, a.AccountID)
		}
	}
	return out
}

func pickNames(ps []rules.Pick) []string {
	out := make([]string, 0, len(ps))
	for _, pk := range ps {
		out = append(out, pickName(pk))
	}
	return out
}

func pickName(pk rules.Pick) string {
	switch {
	case pk.Person != "":
		return pk.Person
	case pk.Name != "":
		return pk.Name
	}
	return pk.AccountID
}

// permanent reports an error that can never succeed as sent (an upstream
// 4xx, or an event prflow refuses).
func permanent(err error) bool { return upstream.IsPermanent(err) }
