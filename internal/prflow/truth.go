package prflow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// An event is a hint that something changed; what rolekeeper decides from is
// Bitbucket's own state:
//
//   - approvals and change requests are verified facts: read from the pull
//     request itself (GET), never taken from an event body. The record keeps
//     the last verified ones; a pass that reads nothing decides from those,
//     and only when the event's body shows exactly the same (a body showing
//     anything else, and every approval event, costs one read);
//   - the reviewers PUT is sent only after the pull request was read in the
//     same pass, with the title and description it had;
//   - the commits of the head (one read per head) name every commit author
//     (separation of duties) and give the full 40-hex head the statuses go on;
//   - a rule with invalidate_on_push reads the activity for the time of the
//     last push and of each approval (Bitbucket's clock, never commit dates).

// Keys of PRRecord.Statuses that are prflow's own memory, not statuses
// (status keys start with "rolekeeper-"). Both are tied to one head commit.
const (
	authorsKey = "commit-authors" // "<full head>|<account id>,…"
	pushedKey  = "pushed-at"      // "<full head>|<RFC 3339 time of the push>"
)

// gather reads what the decision needs and decides (pure), reading the pull
// request when the facts at hand cannot be trusted for what the decision
// would do.
func (p *pass) gather(ctx context.Context) error {
	if err := p.reviewLoad(ctx); err != nil {
		return err
	}
	switch {
	case p.in.truth:
		p.adopt(&p.pr)
	case p.in.fromRecord:
		// A branch push names no pull request state: what the record
		// verified may have been reset by the push.
		if len(p.rec.Approvals) > 0 {
			if err := p.readTruth(ctx); err != nil {
				return err
			}
		}
	case p.in.review || !sameFacts(p.pr.Approvals(), p.rec.Approvals):
		if err := p.readTruth(ctx); err != nil {
			return err
		}
	default:
		// The body shows what the record verified: decide from the record.
		p.facts = append([]model.Approval(nil), p.rec.Approvals...)
	}
	for {
		if err := p.knowAuthors(ctx); err != nil {
			return err
		}
		files, err := p.files(ctx)
		if err != nil {
			return err
		}
		if err := p.pushTime(ctx); err != nil {
			return err
		}
		p.decide(files)
		if p.read || !p.needsTruth() {
			return nil
		}
		if err := p.readTruth(ctx); err != nil {
			return err
		}
	}
}

// needsTruth reports whether the decision would write something that must
// rest on a read: reviewers to add (the PUT carries the current title and
// description).
func (p *pass) needsTruth() bool {
	if closed(p.pr.State) {
		return false
	}
	return len(p.toAdd()) > 0
}

// readTruth reads the pull request and makes it the pass's pull request.
func (p *pass) readTruth(ctx context.Context) error {
	got, err := p.h.host.GetPullRequest(ctx, p.pr.Repository, p.pr.ID)
	p.calls++
	if err != nil {
		return fmt.Errorf("prflow: read %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	truth := clonePR(got)
	truth.Repository = p.pr.Repository
	if truth.State == "" {
		truth.State = p.pr.State
	}
	p.adopt(&truth)
	p.pr = truth
	return nil
}

// adopt takes a pull request read from Bitbucket as the truth.
func (p *pass) adopt(pr *model.PullRequest) {
	p.read = true
	p.facts = pr.Approvals()
	switch {
	case pr.SourceCommit == "":
	case model.SameCommit(pr.SourceCommit, p.commit):
		p.commit = longer(p.commit, pr.SourceCommit)
	default: // the head moved since the event
		p.commit = pr.SourceCommit
	}
}

// knowAuthors sets who wrote the change: the commit authors (know) and
// everyone who pushed to the branch while rolekeeper knew the pull request.
// A commit's author is whatever its committer typed (an email Bitbucket
// maps to no account escapes the commit list); the actor of a signed
// repo:push is whom Bitbucket authenticated.
func (p *pass) knowAuthors(ctx context.Context) error {
	if c := p.in.pushed; c != nil {
		// A signed push names both heads in full: what later tells a
		// push of a twin from an edit (model.HasTwin).
		p.rec.AddHeads(c.OldCommit, c.NewCommit)
		p.rec.AddPusher(p.in.actor.AccountID)
	}
	if err := p.branchPushers(ctx); err != nil {
		return err
	}
	if err := p.know(ctx); err != nil {
		return err
	}
	for _, id := range p.rec.Pushers() {
		if !slices.ContainsFunc(p.authors, func(a model.Actor) bool { return a.AccountID == id }) {
			p.authors = append(p.authors, model.Actor{AccountID: id})
		}
	}
	return nil
}

// know sets the commit authors of the head and its full hash: from the
// record when it read them for this head, else from the signed push that
// moved the head when its commit list is complete, else from the pull
// request's commits (one read), else by resolving the hash (one read).
func (p *pass) know(ctx context.Context) error {
	if full, ids, ok := p.cached(authorsKey); ok {
		p.commit = full
		p.setAuthors(ids)
		return nil
	}
	if p.fromPush() {
		return nil
	}
	commits, err := p.h.host.PullRequestCommits(ctx, p.pr.Repository, p.pr.ID)
	p.calls++
	if err != nil && closed(p.pr.State) && upstream.IsNotFound(err) {
		// A closed pull request whose branch is gone may list no commits:
		// it is judged without them (nothing is written upstream).
		p.log().Info("commits of a closed pull request not found: judged without commit authors", zap.Error(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("prflow: commits of %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	full := ""
	for _, c := range commits {
		if len(c.Hash) == 40 && (p.commit == "" || model.SameCommit(c.Hash, p.commit)) {
			full = c.Hash
			break
		}
	}
	if full == "" && len(p.commit) == 40 {
		full = p.commit
	}
	if full == "" && p.commit != "" {
		// The head is not among the commits (the list moved on): ask
		// Bitbucket which commit the abbreviation names.
		full, err = p.h.host.ResolveCommit(ctx, p.pr.Repository, p.commit)
		p.calls++
		if err != nil {
			return fmt.Errorf("prflow: resolve %s in %s: %w", p.commit, p.pr.Repository, err)
		}
	}
	var ids []string
	p.authors = p.authors[:0]
	for _, c := range commits {
		if id := c.Author.AccountID; id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
			p.authors = append(p.authors, c.Author)
		} else if id == "" && c.AuthorRaw != "" {
			p.log().Debug("commit author not mapped to an account", zap.String("commit", short(c.Hash)), zap.String("author", c.AuthorRaw))
		}
	}
	if full != "" {
		p.upgradeCommit(full)
		p.commit = full
		p.rec.Statuses[authorsKey] = full + "|" + strings.Join(ids, ",")
		// Commits sharing the head's 12 hex are twins the activity cannot
		// tell apart from it: remember them with the head.
		for _, c := range commits {
			if model.HasTwin(full, []string{c.Hash}) {
				p.rec.AddHeads(c.Hash)
			}
		}
		p.rec.AddHeads(full)
	}
	return nil
}

func (p *pass) setAuthors(ids string) {
	p.authors = p.authors[:0]
	for _, id := range strings.Split(ids, ",") {
		if id != "" {
			p.authors = append(p.authors, model.Actor{AccountID: id})
		}
	}
}

// fromPush takes the commit authors of the head from the repo:push that
// moved it there, without reading the commits: the body is signed (it is
// Bitbucket's), and the record knows the authors of the head it moved from.
// Only a complete list counts (model.PushChange.CommitsComplete: not
// truncated, not forced, no merge commit, every author mapped or plainly
// unmapped), and only when the head decided on is the push's new head by
// full hash. A fast-forward keeps every earlier commit on the branch, so
// the authors are the earlier ones and the new commits'; a commit that
// meanwhile reached the destination keeps its author excluded (stricter
// than the commits API, never looser).
func (p *pass) fromPush() bool {
	c := p.in.pushed
	if c == nil || !c.CommitsComplete || len(c.Commits) == 0 || !model.SameFullCommit(c.NewCommit, p.commit) {
		return false
	}
	full, ids, ok := cachedFor(p.rec.Statuses[authorsKey], c.OldCommit)
	if !ok || !model.SameFullCommit(full, c.OldCommit) {
		return false
	}
	list := strings.FieldsFunc(ids, func(r rune) bool { return r == ',' })
	for _, cm := range c.Commits {
		if id := cm.Author.AccountID; id != "" && !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	joined := strings.Join(list, ",")
	p.commit = strings.ToLower(c.NewCommit)
	p.setAuthors(joined)
	p.rec.Statuses[authorsKey] = p.commit + "|" + joined
	return true
}

// pushTime reads the activity when a rule counts only approvals given after
// the last push and an approval is there to judge: it dates the push of the
// head and each approval by Bitbucket's clock.
func (p *pass) pushTime(ctx context.Context) error {
	if !p.invalidating() || !hasApproval(p.facts) {
		return nil
	}
	if _, at, ok := p.cached(pushedKey); ok && !p.read {
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			p.lastPush = t
			return nil
		}
	}
	acts, err := p.h.host.PullRequestActivity(ctx, p.pr.Repository, p.pr.ID)
	p.calls++
	if err != nil {
		return fmt.Errorf("prflow: activity of %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	p.lastPush = time.Time{}
	if at, ok := model.LastPush(acts, p.commit, model.HasTwin(p.commit, p.rec.Heads())); ok {
		p.lastPush = at
		p.rec.Statuses[pushedKey] = p.commit + "|" + at.UTC().Format(time.RFC3339Nano)
	}
	// An approval's time is its activity entry's (newest first), never
	// participated_on, which a later comment moves.
	for i := range p.facts {
		f := &p.facts[i]
		f.At = time.Time{}
		for _, a := range acts {
			kind := model.ActivityApproval
			if f.State == model.ReviewChangesRequested {
				kind = model.ActivityChangesRequest
			}
			if a.Kind == kind && a.User.AccountID == f.AccountID {
				f.At = a.At
				break
			}
		}
	}
	return nil
}

// invalidating reports whether a rule of the team counts only approvals
// given after the last push.
func (p *pass) invalidating() bool { return p.h.engineFor(p.org).NeedsPushTime(p.team.ID) }

func hasApproval(as []model.Approval) bool {
	for _, a := range as {
		if a.State == model.ReviewApproved {
			return true
		}
	}
	return false
}

// cached reads the record's memory under key for the pass's head. A head
// known by 12 hex only is not matched to a remembered full hash when the
// record knows a twin of it: which of the two it is takes a read.
func (p *pass) cached(key string) (full, value string, ok bool) {
	if !model.IsFullCommit(p.commit) && model.HasTwin(p.commit, p.rec.Heads()) {
		return "", "", false
	}
	return cachedFor(p.rec.Statuses[key], p.commit)
}

// cachedFor reads "<full head>|<value>" and returns them when the head is
// the commit asked about.
func cachedFor(entry, commit string) (full, value string, ok bool) {
	full, value, found := strings.Cut(entry, "|")
	if !found || len(full) != 40 || commit == "" || !model.SameCommit(full, commit) {
		return "", "", false
	}
	return full, value, true
}

// sameFacts reports whether two lists hold the same review state per
// account (approved or changes requested), times aside.
func sameFacts(a, b []model.Approval) bool {
	return factKey(a) == factKey(b)
}

func factKey(as []model.Approval) string {
	var parts []string
	for _, a := range as {
		if a.State == model.ReviewApproved || a.State == model.ReviewChangesRequested {
			parts = append(parts, a.AccountID+"="+string(a.State))
		}
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}
