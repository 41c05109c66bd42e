package prflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// commentKey is the entry of PRRecord.Statuses that remembers what the
// explaining comment says: "<decision id>|<sha256 of the body>", or
// "deleted" once someone removed it. It is not a status key (those start
// with "rolekeeper-") and survives a new head commit.
const commentKey = "comment"

const commentDeleted = "deleted"

// reviewers asks the decision's picks to review: the current reviewers plus
// the new picks, one PUT, only when someone is to be added. Nobody is ever
// removed; the author is never asked; a person rolekeeper asked before and
// who is no longer on the pull request is not asked again (someone removed
// them: rolekeeper does not fight people).
func (p *pass) reviewers(ctx context.Context) error {
	pr := &p.pr
	add := p.toAdd()
	if len(add) == 0 {
		p.h.m.action(actionReviewers, outcomeSkipped)
		return nil
	}
	names := pickNames(add)
	p.changed = true
	if p.h.dryRun {
		p.h.m.action(actionReviewers, outcomeDryRun)
		p.note("would ask " + strings.Join(names, ", "))
		return nil
	}
	if !p.read {
		// Unreachable: gather reads before deciding to add anyone.
		return fmt.Errorf("prflow: reviewers of %s#%d decided without reading the pull request", pr.Repository, pr.ID)
	}
	desired := append([]model.Actor(nil), pr.Reviewers...)
	for _, pk := range add {
		desired = append(desired, model.Actor{AccountID: pk.AccountID, DisplayName: pk.Name})
	}
	// The PUT replaces the pull request: it carries the title and the
	// description read in this pass.
	got, err := p.h.host.SetReviewers(ctx, pr.Repository, pr.ID, pr.Title, pr.Description, desired)
	p.calls++
	if err != nil {
		p.h.m.action(actionReviewers, outcomeError)
		return fmt.Errorf("prflow: ask %s on %s#%d: %w", strings.Join(names, ", "), pr.Repository, pr.ID, err)
	}
	p.h.m.action(actionReviewers, outcomeOK)
	for _, pk := range add {
		p.rec.Requested = append(p.rec.Requested, pk.AccountID)
	}
	p.rec.Reviewers = accountIDs(desired)
	if got != nil {
		if len(got.Reviewers) > 0 {
			p.rec.Reviewers = accountIDs(got.Reviewers)
		}
		// Bitbucket echoes the change as pullrequest:updated with this
		// updated_on: that event then costs nothing.
		p.doneAt = later(p.doneAt, got.UpdatedAt)
	}
	p.note("asked " + strings.Join(names, ", "))
	p.log().Info("reviewers requested", zap.Strings("reviewers", names))
	return p.save(ctx)
}

// toAdd lists the decision's picks who are not reviewers yet: never the
// author, never someone rolekeeper asked before who is no longer on the
// pull request (someone removed them: rolekeeper does not fight people).
func (p *pass) toAdd() []rules.Pick {
	pr := &p.pr
	if pr.Draft && !p.h.assignDrafts {
		return nil
	}
	current := map[string]bool{}
	for _, a := range pr.Reviewers {
		if a.AccountID != "" {
			current[a.AccountID] = true
		}
	}
	var add []rules.Pick
	for _, pk := range p.d.Request {
		id := pk.AccountID
		switch {
		case id == "" || id == pr.Author.AccountID || current[id]:
			continue
		case contains(p.rec.Requested, id):
			p.log().Debug("not asking again a reviewer rolekeeper asked before", zap.String("account_id", id))
			continue
		}
		add = append(add, pk)
	}
	return add
}

// statuses posts rolekeeper-review and rolekeeper-tests on the source
// commit when their state or description differs from what was posted on
// this commit.
func (p *pass) statuses(ctx context.Context) error {
	var todo []rules.Status
	for _, s := range p.d.Statuses {
		if p.rec.Statuses[s.Key] == statusValue(s) && s.Key != p.in.repost {
			p.h.m.action(actionStatus, outcomeSkipped)
			continue
		}
		todo = append(todo, s)
	}
	if len(todo) == 0 {
		return nil
	}
	p.changed = true
	if p.h.dryRun {
		for _, s := range todo {
			p.h.m.action(actionStatus, outcomeDryRun)
			p.note(fmt.Sprintf("would post %s %s", statusLabel(s.Key), s.State))
		}
		return nil
	}
	commit, err := p.fullCommit(ctx)
	if err != nil {
		return err
	}
	for _, s := range todo {
		st := model.CommitStatus{
			Key:         s.Key,
			State:       s.State,
			Name:        statusName(s.Key),
			Description: s.Description,
			URL:         p.decisionURL(),
		}
		err := p.h.host.SetCommitStatus(ctx, p.pr.Repository, commit, st)
		p.calls++
		if err != nil {
			p.h.m.action(actionStatus, outcomeError)
			return fmt.Errorf("prflow: post %s on %s@%s: %w", s.Key, p.pr.Repository, short(commit), err)
		}
		p.h.m.action(actionStatus, outcomeOK)
		p.rec.Statuses[s.Key] = statusValue(s)
		p.note(fmt.Sprintf("%s %s", statusLabel(s.Key), s.State))
		if err := p.save(ctx); err != nil {
			return err
		}
	}
	return nil
}

func statusValue(s rules.Status) string { return s.State + "|" + s.Description }

// fullCommit returns the 40-hex hash to post statuses on: gather learnt it
// from the pull request's commits; a head it could not find is resolved
// (one read).
func (p *pass) fullCommit(ctx context.Context) (string, error) {
	if len(p.commit) >= 40 || p.commit == "" {
		return p.commit, nil
	}
	full, err := p.h.host.ResolveCommit(ctx, p.pr.Repository, p.commit)
	p.calls++
	if err != nil {
		return "", fmt.Errorf("prflow: resolve %s in %s: %w", p.commit, p.pr.Repository, err)
	}
	p.upgradeCommit(full)
	return p.commit, nil
}

// upgradeCommit keeps a longer hash of the same commit.
func (p *pass) upgradeCommit(h string) {
	if l := longer(p.commit, h); l != p.commit {
		p.commit = l
		p.rec.SourceCommit = longer(p.rec.SourceCommit, l)
		p.rec.DiffCommit = longer(p.rec.DiffCommit, l)
	}
}

// comment keeps one explaining comment per pull request: created once
// (when there is something to explain), edited when its text changes.
//
// Crash windows: the comment id is stored right after Bitbucket answers,
// and kept in memory until that store write succeeds, so a failed write is
// retried by the next attempt in this process without a second comment.
// What remains: the process dying between Bitbucket creating the comment
// and the store write (milliseconds), or the answer being lost on the way
// (a timeout after Bitbucket created it); the retry then cannot know the
// comment exists and posts a second one. Bitbucket offers no idempotency
// key for comments, and finding our own comment would cost a list call on
// every first attempt. Everything after the write is safe: a retry finds
// the id and edits, or does nothing.
func (p *pass) comment(ctx context.Context) error {
	rec := p.rec
	if rec.CommentID == "" {
		if v, ok := p.h.unsaved.Load(p.key()); ok {
			c := v.(unsavedComment)
			rec.CommentID, rec.Statuses[commentKey] = c.id, c.mark
			if err := p.save(ctx); err != nil {
				return err
			}
			p.h.unsaved.Delete(p.key())
		}
	}
	mark := rec.Statuses[commentKey]
	if rec.CommentID == "" || mark == commentDeleted {
		return p.postComment(ctx, mark == commentDeleted)
	}
	// The digest leaves the link out: an unchanged explanation keeps its
	// comment and the link to the decision it was written from.
	if _, sum, ok := parseMark(mark); ok && p.commentDigest() == sum {
		p.h.m.action(actionCommentUpdate, outcomeSkipped)
		return nil
	}
	body := rules.Comment(p.d, p.decisionURL())
	p.changed = true
	if p.h.dryRun {
		p.h.m.action(actionCommentUpdate, outcomeDryRun)
		p.note("would update comment")
		return nil
	}
	err := p.h.host.UpdateComment(ctx, p.pr.Repository, p.pr.ID, rec.CommentID, body)
	p.calls++
	if err != nil {
		if upstream.IsNotFound(err) {
			// Someone deleted it: the explanation of this change is
			// posted again as a new comment.
			p.h.m.action(actionCommentUpdate, outcomeSkipped)
			p.log().Info("rolekeeper's comment was deleted: posting it again", zap.String("comment_id", rec.CommentID))
			rec.CommentID, rec.Statuses[commentKey] = "", commentDeleted
			if err := p.save(ctx); err != nil {
				return err
			}
			return p.postComment(ctx, true)
		}
		p.h.m.action(actionCommentUpdate, outcomeError)
		return fmt.Errorf("prflow: update comment %s on %s#%d: %w", rec.CommentID, p.pr.Repository, p.pr.ID, err)
	}
	p.h.m.action(actionCommentUpdate, outcomeOK)
	rec.Statuses[commentKey] = p.mark()
	p.note("comment updated")
	return p.save(ctx)
}

// postComment creates the comment when one is due, or again (again) when
// someone deleted the previous one and the explanation is being updated.
func (p *pass) postComment(ctx context.Context, again bool) error {
	if !again && !p.worthComment() {
		return nil
	}
	body := rules.Comment(p.d, p.decisionURL())
	p.changed = true
	if p.h.dryRun {
		p.h.m.action(actionCommentCreate, outcomeDryRun)
		p.note("would create comment")
		return nil
	}
	c, err := p.h.host.CreateComment(ctx, p.pr.Repository, p.pr.ID, body)
	p.calls++
	if err != nil {
		p.h.m.action(actionCommentCreate, outcomeError)
		return fmt.Errorf("prflow: comment on %s#%d: %w", p.pr.Repository, p.pr.ID, err)
	}
	p.h.m.action(actionCommentCreate, outcomeOK)
	p.rec.CommentID = c.ID
	p.rec.Statuses[commentKey] = p.mark()
	if again {
		p.note("comment posted again (the previous one was deleted)")
	} else {
		p.note("comment created")
	}
	p.h.unsaved.Store(p.key(), unsavedComment{id: c.ID, mark: p.rec.Statuses[commentKey]})
	if err := p.save(ctx); err != nil {
		return fmt.Errorf("prflow: comment %s created on %s#%d but not recorded yet: %w",
			c.ID, p.pr.Repository, p.pr.ID, err)
	}
	p.h.unsaved.Delete(p.key())
	return nil
}

// unsavedComment is a comment Bitbucket created whose id the store has not
// taken yet.
type unsavedComment struct{ id, mark string }

func (p *pass) key() string { return fmt.Sprintf("%s#%d", p.pr.Repository, p.pr.ID) }

// worthComment says whether a first comment is due: someone is asked or a
// triggered rule is unmet. A pull request every rule is happy with, and a
// draft nobody is asked on yet, get no comment (the statuses say it all).
func (p *pass) worthComment() bool {
	if p.pr.Draft && !p.h.assignDrafts {
		return false
	}
	if len(p.d.Request) > 0 {
		return true
	}
	for _, r := range p.d.Rules {
		if r.Triggered && !r.Met {
			return true
		}
	}
	return false
}

// mark is what the record keeps about the comment just written.
func (p *pass) mark() string {
	return strconv.FormatInt(p.decisionID, 10) + "|" + p.commentDigest()
}

// commentDigest fingerprints the explanation the decision gives: what
// the comment says without its link (each decision has its own random one)
// and with who is asked reduced to everyone rolekeeper asks or ever asked
// on the pull request. A rule that becomes met asks nobody any more; that,
// a load count moving or "asked Mei" turning into "kept Mei" is no reason
// to edit: where things stand is in the statuses. Someone new being asked
// is.
func (p *pass) commentDigest() string {
	d := p.d
	d.Request = nil
	d.Rules = append([]rules.RuleResult(nil), d.Rules...)
	for i := range d.Rules {
		// Picks and their notes (who is away) exist only while a rule
		// waits for approvals.
		d.Rules[i].Picks, d.Rules[i].Notes = nil, nil
	}
	asked := append([]string(nil), p.rec.Requested...)
	for _, pk := range p.d.Request {
		if !pk.Kept {
			asked = append(asked, pk.AccountID)
		}
	}
	slices.Sort(asked)
	return digest(rules.Comment(d, "") + "\nasked: " + strings.Join(slices.Compact(asked), ","))
}

func parseMark(s string) (int64, string, bool) {
	a, b, ok := strings.Cut(s, "|")
	if !ok {
		return 0, "", false
	}
	id, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return id, b, true
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
