package prflow

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Bitbucket lets anyone who can push write any commit status, rolekeeper's
// keys included, and a status posted under an existing key replaces it: one
// curl turns rolekeeper-review green on one's own head, and a merge check
// counting successful builds lets the merge through. Bitbucket says who
// wrote a status (repo:commit_status_created/updated: signed, its actor the
// account Bitbucket authenticated). A status of rolekeeper's on an open pull
// request's head that someone else rewrote is posted again, and the
// rewrite is recorded as a finding naming who did it. (The merge itself is
// judged from verified approvals, never from statuses: a merge in the
// window before the status is back is still a finding.)

// selfReader is the part of the Bitbucket client that names the account
// rolekeeper acts as (GET /user).
type selfReader interface {
	CurrentUser(ctx context.Context) (model.Actor, error)
}

// self remembers rolekeeper's own account once read.
type self struct {
	mu sync.Mutex
	a  model.Actor
}

// wroteIt reports whether actor is rolekeeper's own account; known is
// false when the host cannot say (a host without GET /user).
func (h *Handler) wroteIt(ctx context.Context, actor model.Actor) (mine, known bool, err error) {
	r, ok := h.host.(selfReader)
	if !ok {
		return false, false, nil
	}
	h.me.mu.Lock()
	defer h.me.mu.Unlock()
	if h.me.a.AccountID == "" && h.me.a.UUID == "" {
		a, err := r.CurrentUser(ctx)
		if err != nil {
			return false, false, fmt.Errorf("prflow: who rolekeeper is (GET /user): %w", err)
		}
		h.me.a = a
	}
	me := h.me.a
	switch {
	case actor.AccountID != "" && me.AccountID != "":
		return actor.AccountID == me.AccountID, true, nil
	case actor.UUID != "" && me.UUID != "":
		return strings.EqualFold(actor.UUID, me.UUID), true, nil
	}
	return false, true, nil
}

// statusWritten handles repo:commit_status_created and _updated.
func (h *Handler) statusWritten(ctx context.Context, ev *model.Event, in input) error {
	st := ev.CommitStatus
	if st == nil || !strings.HasPrefix(st.Key, "rolekeeper-") || h.dryRun {
		return nil
	}
	repo := strings.ToLower(ev.Repository)
	commit := strings.ToLower(st.Commit)
	if repo == "" || !model.IsFullCommit(commit) {
		return nil
	}
	org := h.roles.Get()
	if org == nil || org.TeamForRepo(repo) == nil {
		return nil
	}
	recs, err := h.st.PRsByCommit(ctx, repo, commit)
	if err != nil {
		return fmt.Errorf("prflow: pull requests at %s: %w", short(commit), err)
	}
	for _, rec := range recs {
		want := rec.Statuses[st.Key]
		if rec.State != model.PROpen || !model.SameFullCommit(rec.SourceCommit, commit) ||
			want == "" || want == statusValue(rules.Status{State: st.State, Description: st.Description}) {
			continue // not a head rolekeeper posted this key on, or rolekeeper's own write
		}
		mine, known, err := h.wroteIt(ctx, ev.Actor)
		if err != nil {
			return err
		}
		if mine {
			continue // an older write of rolekeeper's, delivered late
		}
		who := cmp.Or(ev.Actor.DisplayName, ev.Actor.AccountID, ev.Actor.UUID, "someone")
		h.log.Warn("a rolekeeper status was rewritten by someone else: posting it again",
			zap.String("repo", repo), zap.Int("pr", rec.ID), zap.String("commit", short(commit)),
			zap.String("key", st.Key), zap.String("state", st.State), zap.String("by", who),
			zap.String("account_id", ev.Actor.AccountID), zap.String("delivery_id", in.delivery))
		pin := in
		pin.fromRecord, pin.repost = true, st.Key
		if _, err := h.reconcile(ctx, prFromRecord(repo, rec, commit), pin); err != nil {
			return err
		}
		if !known {
			continue // who wrote it cannot be told from rolekeeper: no finding
		}
		if err := h.overwrittenFinding(ctx, org, rec, commit, st, ev); err != nil {
			return err
		}
	}
	return nil
}

// overwrittenFinding records a rewrite of rolekeeper's status (the
// finding is the engine's: rules.RewriteFinding).
func (h *Handler) overwrittenFinding(ctx context.Context, org *roles.Org, rec store.PRRecord, commit string, st *model.CommitStatus, ev *model.Event) error {
	was, _, _ := strings.Cut(rec.Statuses[st.Key], "|")
	f := rules.RewriteFinding(org, rules.Rewrite{Repository: rec.Repository, Number: rec.ID, Team: rec.Team,
		Commit: commit, Key: st.Key, State: st.State, Was: was, By: ev.Actor, At: ev.At, Now: h.now()})
	if _, err := h.st.AddFinding(ctx, f); err != nil {
		return fmt.Errorf("prflow: record finding %s: %w", f.Key, err)
	}
	h.m.action(actionStatus, "overwritten")
	return nil
}

// prFromRecord stands the record in for the pull request at head: what a
// pass built from the record (a branch push, a rewritten status) decides
// from, reading the pull request when the record holds approvals.
func prFromRecord(repo string, rec store.PRRecord, head string) model.PullRequest {
	pr := model.PullRequest{
		Repository: repo, ID: rec.ID, Title: rec.Title, State: model.PROpen, Draft: rec.Draft,
		Author: model.Actor{AccountID: rec.AuthorAccountID}, SourceCommit: head,
		DestinationBranch: rec.DestinationBranch, CreatedAt: rec.CreatedAt,
	}
	for _, id := range rec.Reviewers {
		pr.Reviewers = append(pr.Reviewers, model.Actor{AccountID: id})
	}
	return pr
}
