package prflow

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/reloadly/rolekeeper/internal/model"
)

// A branch is often pushed before anyone opens a pull request from it, so
// the pull request's record cannot hold those pushers yet. Who pushed to a
// branch of an owned repository (the actor of a signed repo:push, whom
// Bitbucket authenticated) is kept per branch in the store's key-value
// table until the branch is deleted or a pull request from it is merged; a
// pass over a pull request from that branch adds them to its record
// (PRRecord.Pushers: separation of duties).

// pusherKV is the part of the store that keeps branch pushers; a store
// without it keeps none (pushers then count from the pull request's
// record alone).
type pusherKV interface {
	Get(ctx context.Context, key string) (string, bool, error)
	Set(ctx context.Context, key, value string) error
	Delete(ctx context.Context, key string) error
}

// maxBranchPushers bounds one branch's list.
const maxBranchPushers = 32

func branchPushersKey(repo, branch string) string {
	return "prflow:pushers:" + strings.ToLower(repo) + ":" + branch
}

// rememberPusher records who pushed to a branch, or forgets the branch
// when the push deleted it.
func (h *Handler) rememberPusher(ctx context.Context, repo string, c model.PushChange, actor model.Actor) error {
	kv, ok := h.st.(pusherKV)
	if !ok || (c.RefType != "" && c.RefType != "branch") || c.RefName == "" {
		return nil
	}
	key := branchPushersKey(repo, c.RefName)
	if c.Closed {
		if err := kv.Delete(ctx, key); err != nil {
			return fmt.Errorf("prflow: forget pushers of %s: %w", c.RefName, err)
		}
		return nil
	}
	id := actor.AccountID
	if id == "" || strings.ContainsAny(id, ", ") {
		return nil
	}
	// Two pushes to one branch handled at once may lose one name here;
	// the pull request's record still gets every pusher of a push that
	// moved its head (knowAuthors).
	h.pushersMu.Lock()
	defer h.pushersMu.Unlock()
	cur, _, err := kv.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("prflow: pushers of %s: %w", c.RefName, err)
	}
	list := strings.FieldsFunc(cur, func(r rune) bool { return r == ',' })
	if slices.Contains(list, id) {
		return nil
	}
	list = append([]string{id}, list...)
	if len(list) > maxBranchPushers {
		list = list[:maxBranchPushers]
	}
	if err := kv.Set(ctx, key, strings.Join(list, ",")); err != nil {
		return fmt.Errorf("prflow: remember pusher of %s: %w", c.RefName, err)
	}
	return nil
}

// branchPushers adds to the record whoever pushed to the pull request's
// source branch before rolekeeper knew the pull request.
func (p *pass) branchPushers(ctx context.Context) error {
	kv, ok := p.h.st.(pusherKV)
	if !ok || p.pr.SourceBranch == "" {
		return nil
	}
	cur, found, err := kv.Get(ctx, branchPushersKey(p.pr.Repository, p.pr.SourceBranch))
	if err != nil {
		return fmt.Errorf("prflow: pushers of %s: %w", p.pr.SourceBranch, err)
	}
	if !found {
		return nil
	}
	ids := strings.FieldsFunc(cur, func(r rune) bool { return r == ',' })
	for i := len(ids) - 1; i >= 0; i-- { // oldest first: the record lists newest first
		p.rec.AddPusher(ids[i])
	}
	return nil
}

// forgetBranchPushers drops the source branch's pushers once a pull request
// from it is merged: their commits are in the destination now, and a later
// pull request from a long-lived branch brings only what is pushed after.
func (p *pass) forgetBranchPushers(ctx context.Context) error {
	kv, ok := p.h.st.(pusherKV)
	if !ok || p.pr.SourceBranch == "" {
		return nil
	}
	if err := kv.Delete(ctx, branchPushersKey(p.pr.Repository, p.pr.SourceBranch)); err != nil {
		return fmt.Errorf("prflow: forget pushers of %s: %w", p.pr.SourceBranch, err)
	}
	return nil
}
