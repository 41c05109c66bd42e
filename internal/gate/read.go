package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// Host is what the gate reads from and writes to Bitbucket; the bitbucket
// client implements it.
type Host interface {
	CommitPullRequests(ctx context.Context, repo, commit string) ([]model.PullRequest, error)
	GetPullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error)
	// PullRequestCommits lists a pull request's commits with full hashes
	// and their authors (an account only when Bitbucket maps the email).
	PullRequestCommits(ctx context.Context, repo string, id int) ([]model.Commit, error)
	// PullRequestActivity lists dated approvals and updates (pushes).
	PullRequestActivity(ctx context.Context, repo string, id int) ([]model.PRActivity, error)
	// ResolveCommit returns the full hash of a (short) hash; NotFound when
	// no commit, or more than one, has it.
	ResolveCommit(ctx context.Context, repo, hash string) (string, error)
	// MainBranch is the repository's main branch.
	MainBranch(ctx context.Context, repo string) (string, error)
	ListComments(ctx context.Context, repo string, id int, maxPages int) ([]model.Comment, error)
	CreateComment(ctx context.Context, repo string, id int, body string) (model.Comment, error)
	SetCommitStatus(ctx context.Context, repo, commit string, st model.CommitStatus) error
}

// prCommits is what a gate keeps of one pull request's commits, read again
// only when its head moves: who authored them, and whether the gate's
// commit is one of them.
type prCommits struct {
	Head       string             `json:"head"` // full hash of the head they were read at
	Contains   bool               `json:"contains"`
	Authorship []rules.Authorship `json:"authorship,omitempty"`
	Unmapped   []string           `json:"unmapped,omitempty"` // commit authors Bitbucket maps to no account
	// Twins are the pull request's other commits sharing the head's 12
	// hex: the activity cannot tell their pushes apart (model.HasTwin).
	Twins []string `json:"twins,omitempty"`
}

// facts is what one re-read of Bitbucket found.
type facts struct {
	now         time.Time
	found       []int                      // pull requests found to carry the commit
	prs         map[int]*model.PullRequest // re-read pull requests that carry it
	moved       map[int]string             // pull requests that no longer carry it, and why
	comments    map[int][]model.Comment
	commits     map[int]prCommits
	ambiguous   map[int]bool                 // the head's 12 hex name no single commit of the repository
	heads       map[int][]string             // heads rolekeeper's record of each pull request saw
	approvedAt  map[int]map[string]time.Time // Bitbucket's date of each current approval
	pushedAt    map[int]time.Time            // the last push, as the activity dates it
	pushUnknown map[int]bool                 // the activity does not show the last push
	policy      Policy
}

// read gathers a gate's facts. An environment no rule gates, or a gate past
// its time, needs no call to Bitbucket. Every pull request is checked to
// carry the commit by full hash: Bitbucket's 12-hex hashes are resolved
// through the API, never compared by prefix.
func (s *Service) read(ctx context.Context, g *store.Gate, hints []int) (facts, error) {
	org := s.o.Roles.Get()
	now := s.now()
	d := readDetails(g)
	f := facts{now: now, prs: map[int]*model.PullRequest{}, moved: map[int]string{}, comments: map[int][]model.Comment{},
		commits: map[int]prCommits{}, approvedAt: map[int]map[string]time.Time{}, pushedAt: map[int]time.Time{}, pushUnknown: map[int]bool{}, ambiguous: map[int]bool{}, heads: map[int][]string{}}
	f.policy = s.policy(org, g, authorshipOf(d), now)
	if !f.policy.Deploy.Gated || !now.Before(g.ExpiresAt) {
		return f, nil
	}
	ids := slices.Clone(g.PRs)
	known := len(ids) > 0
	if !known {
		found, err := s.discover(ctx, g, d.Dropped, hints)
		if err != nil {
			return f, err
		}
		ids = found
	}
	var authorship []rules.Authorship
	var unmapped []string
	for _, id := range ids {
		pr, err := s.o.Host.GetPullRequest(ctx, g.Repository, id)
		if upstream.IsNotFound(err) || errors.Is(err, store.ErrNotFound) {
			f.moved[id] = "pull request #" + strconv.Itoa(id) + " no longer exists"
			continue
		}
		if err != nil {
			return f, &UpstreamError{fmt.Errorf("read %s#%d: %w", g.Repository, id, err)}
		}
		if why, err := s.throughDeployBranch(ctx, g, f.policy, pr); err != nil {
			return f, err
		} else if why != "" {
			if known {
				f.moved[id] = why
			}
			continue
		}
		head, err := s.full(ctx, g.Repository, pr.SourceCommit, headStamp(pr))
		if err == nil && head == "" && pr.SourceCommit != "" {
			// Bitbucket resolves the head's 12 hex to no single commit:
			// another commit shares them (model.LastPush's twin).
			f.ambiguous[id] = true
			head, err = s.headAmongCommits(ctx, g, pr)
		}
		if err != nil {
			return f, err
		}
		why, cs, err := s.carries(ctx, g, d, pr, head)
		if err != nil {
			return f, err
		}
		if why != "" {
			if known {
				f.moved[id] = why
			} // a candidate that does not carry it is no news
			continue
		}
		if !known {
			f.found = append(f.found, id)
		}
		f.prs[id], f.commits[id] = pr, cs
		if a := pr.Author.AccountID; a != "" {
			authorship = append(authorship, rules.Authorship{AccountID: a, What: "authored pull request #" + strconv.Itoa(id)})
		}
		authorship = append(authorship, cs.Authorship...)
		rec, err := s.prRecord(ctx, g.Repository, id)
		if err != nil {
			return f, err
		}
		// Whoever pushed to the branch (a signed repo:push: Bitbucket
		// authenticated them) wrote the change too, whatever name the
		// commits carry.
		for _, p := range rec.Pushers() {
			authorship = append(authorship, rules.Authorship{AccountID: p, What: "pushed to the branch of pull request #" + strconv.Itoa(id)})
		}
		f.heads[id] = rec.Heads()
		unmapped = append(unmapped, cs.Unmapped...)
		comments, err := s.o.Host.ListComments(ctx, g.Repository, id, s.o.MaxCommentPages)
		if err != nil {
			return f, &UpstreamError{fmt.Errorf("comments of %s#%d: %w", g.Repository, id, err)}
		}
		f.comments[id] = comments
	}
	sort.SliceStable(authorship, func(i, j int) bool { return authorship[i].AccountID < authorship[j].AccountID })
	f.policy = s.policy(org, g, authorship, now)
	for _, u := range unmapped {
		f.policy.Deploy.Notes = append(f.policy.Deploy.Notes, u)
	}
	// Dates matter only for an approval that would otherwise count: read
	// the activity of those pull requests alone.
	if f.policy.Deploy.InvalidateOnPush {
		for id, pr := range f.prs {
			if !approvedByEligible(pr, f.policy) {
				continue
			}
			acts, err := s.o.Host.PullRequestActivity(ctx, g.Repository, id)
			if err != nil {
				return f, &UpstreamError{fmt.Errorf("activity of %s#%d: %w", g.Repository, id, err)}
			}
			// When the head became the head: Bitbucket's own date of the
			// push (title edits and the merge carry the same head). Not
			// found (the log is truncated): no approval can be dated after
			// it, so none counts.
			f.approvedAt[id] = approvalDates(acts)
			// Twins of the head: among its commits, or heads rolekeeper's
			// record saw (from signed pushes and commit lists).
			head := orDefault(f.commits[id].Head, pr.SourceCommit)
			known := append(slices.Clone(f.commits[id].Twins), f.heads[id]...)
			if at, ok := model.LastPush(acts, head, f.ambiguous[id] || model.HasTwin(head, known)); ok {
				f.pushedAt[id] = at
			} else {
				f.pushUnknown[id] = true
			}
		}
	}
	return f, nil
}

// prRecord is rolekeeper's own record of a pull request (nil when it has
// none): the heads and pushers the review flow saw.
func (s *Service) prRecord(ctx context.Context, repo string, id int) (*store.PRRecord, error) {
	rec, err := s.o.Store.GetPR(ctx, repo, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("record of %s#%d: %w", repo, id, err)
	}
	return rec, nil
}

func approvedByEligible(pr *model.PullRequest, p Policy) bool {
	for _, a := range pr.Approvals() {
		if ok, _ := rules.CanApproveDeploy(p.Deploy, a.AccountID); ok && a.State == model.ReviewApproved {
			return true
		}
	}
	return false
}

// approvalDates is the date of each account's current approval (the
// activity lists current approvals; the newest one counts).
func approvalDates(acts []model.PRActivity) map[string]time.Time {
	out := map[string]time.Time{}
	for _, a := range acts {
		if a.Kind == model.ActivityApproval && a.User.AccountID != "" && a.At.After(out[a.User.AccountID]) {
			out[a.User.AccountID] = a.At
		}
	}
	return out
}

// commitsOf returns what the gate knows of a pull request's commits,
// reading them again when its head moved since.
func (s *Service) commitsOf(ctx context.Context, g *store.Gate, d details, pr *model.PullRequest, head string) (prCommits, error) {
	key := strconv.Itoa(pr.ID)
	if c, ok := d.Commits[key]; ok && head != "" && c.Head == head {
		return c, nil
	}
	list, err := s.o.Host.PullRequestCommits(ctx, g.Repository, pr.ID)
	if err != nil {
		return prCommits{}, &UpstreamError{fmt.Errorf("commits of %s#%d: %w", g.Repository, pr.ID, err)}
	}
	c := prCommits{Head: head}
	seen := map[string]bool{}
	for _, cm := range list {
		if model.HasTwin(head, []string{cm.Hash}) {
			c.Twins = append(c.Twins, strings.ToLower(cm.Hash))
		}
		if model.SameFullCommit(cm.Hash, g.Commit) {
			c.Contains = true
		}
		switch acc := cm.Author.AccountID; {
		case acc != "" && !seen[acc]:
			seen[acc] = true
			c.Authorship = append(c.Authorship, rules.Authorship{AccountID: acc,
				What: "authored commit " + short(cm.Hash) + " of pull request #" + strconv.Itoa(pr.ID)})
		case acc == "" && !seen["raw:"+cm.AuthorRaw]:
			seen["raw:"+cm.AuthorRaw] = true
			c.Unmapped = append(c.Unmapped, fmt.Sprintf("commit %s of pull request #%d is by %q, whom Bitbucket maps to no account: separation of duties cannot cover them",
				short(cm.Hash), pr.ID, truncate(cm.AuthorRaw, 80)))
		}
	}
	return c, nil
}

// headAmongCommits finds the full hash of a pull request's 12-hex head
// among its own commits, when the repository has another commit sharing the
// abbreviation (Bitbucket then resolves it to no single commit). Bitbucket
// lists a pull request's commits from its head back, as git log does: the
// first one sharing the abbreviation is the head (a twin below it is one of
// its ancestors, which the activity cannot tell from it: LastPush's twin).
func (s *Service) headAmongCommits(ctx context.Context, g *store.Gate, pr *model.PullRequest) (string, error) {
	list, err := s.o.Host.PullRequestCommits(ctx, g.Repository, pr.ID)
	if err != nil {
		return "", &UpstreamError{fmt.Errorf("commits of %s#%d: %w", g.Repository, pr.ID, err)}
	}
	for _, cm := range list {
		if h := strings.ToLower(cm.Hash); model.IsFullCommit(h) && model.SameCommit(h, pr.SourceCommit) {
			return h, nil
		}
	}
	return "", nil
}

// carries says why a pull request does not carry the gate's commit ("" when
// it does), comparing full hashes only, and returns its commits when it
// does. A merged one carries it when it is the merge commit or the final
// head (never a commit on the way there); an open one while it is its
// head, so that a newer commit needs its own approval. Commits are read
// only when needed.
func (s *Service) carries(ctx context.Context, g *store.Gate, d details, pr *model.PullRequest, head string) (string, prCommits, error) {
	switch pr.State {
	case model.PRMerged:
		merge, err := s.full(ctx, g.Repository, pr.MergeCommit, "")
		if err != nil {
			return "", prCommits{}, err
		}
		// Only what was approved as a whole is carried: the merge commit
		// and the final head. A commit on the way there (pushed, then
		// reverted before the approval) was never a state anyone approved
		// for deployment.
		if !model.SameFullCommit(merge, g.Commit) && !model.SameFullCommit(head, g.Commit) {
			return fmt.Sprintf("pull request #%d did not end at commit %s (its merge commit or final head)", pr.ID, short(g.Commit)), prCommits{}, nil
		}
		cs, err := s.commitsOf(ctx, g, d, pr, head)
		if err != nil {
			return "", prCommits{}, err
		}
		return "", cs, nil
	case model.PROpen:
		if !model.SameFullCommit(head, g.Commit) {
			return fmt.Sprintf("pull request #%d moved on to commit %s", pr.ID, short(orDefault(head, pr.SourceCommit))), prCommits{}, nil
		}
		cs, err := s.commitsOf(ctx, g, d, pr, head)
		return "", cs, err
	}
	return fmt.Sprintf("pull request #%d is %s", pr.ID, strings.ToLower(string(pr.State))), prCommits{}, nil
}

// throughDeployBranch says why a pull request's approval cannot count for
// the deployment ("" when it can), reading the repository's main branch
// when the rule names no branches (rules.DeployResult.ApprovalBranchWhy).
func (s *Service) throughDeployBranch(ctx context.Context, g *store.Gate, p Policy, pr *model.PullRequest) (string, error) {
	main := ""
	if len(p.Deploy.Branches) == 0 {
		var err error
		if main, err = s.mainBranch(ctx, g.Repository); err != nil {
			return "", err
		}
	}
	return p.Deploy.ApprovalBranchWhy(pr.ID, pr.DestinationBranch, main), nil
}

// mainBranchTTL is how long a repository's main branch is remembered.
const mainBranchTTL = time.Hour

// mainBranch is the repository's main branch, read once an hour.
func (s *Service) mainBranch(ctx context.Context, repo string) (string, error) {
	now := s.now()
	s.mu.Lock()
	m, ok := s.mains[repo]
	s.mu.Unlock()
	if ok && now.Sub(m.at) < mainBranchTTL {
		return m.name, nil
	}
	name, err := s.o.Host.MainBranch(ctx, repo)
	if err != nil {
		return "", &UpstreamError{fmt.Errorf("main branch of %s: %w", repo, err)}
	}
	s.mu.Lock()
	s.mains[repo] = mainBranchOf{name: name, at: now}
	s.mu.Unlock()
	return name, nil
}

type mainBranchOf struct {
	name string
	at   time.Time
}

// headStamp ties the resolution of a pull request's 12-hex head to the
// pull request as it was then: a push (of a twin sharing those 12 hex,
// say) moves updated_on, and the abbreviation is resolved again.
func headStamp(pr *model.PullRequest) string {
	return "#" + strconv.Itoa(pr.ID) + "@" + strconv.FormatInt(pr.UpdatedAt.UnixNano(), 10)
}

// maxResolved bounds the cache of resolved hashes.
const maxResolved = 4096

// full returns the full hash of a commit hash from Bitbucket ("" for none,
// or a hash Bitbucket resolves to no single commit). A full hash is used as
// is; a short one is resolved through the API and remembered under stamp. A
// merge commit's abbreviation (stamp "") keeps naming what it named once
// resolved; a head's can come to name a twin pushed later, so its stamp
// (headStamp) changes with the pull request.
func (s *Service) full(ctx context.Context, repo, hash, stamp string) (string, error) {
	hash = strings.ToLower(strings.TrimSpace(hash))
	if hash == "" || model.IsFullCommit(hash) {
		return hash, nil
	}
	key := repo + "@" + hash + stamp
	s.mu.Lock()
	full, ok := s.resolved[key]
	s.mu.Unlock()
	if ok {
		return full, nil
	}
	full, err := s.o.Host.ResolveCommit(ctx, repo, hash)
	if upstream.IsNotFound(err) {
		s.log.Info("commit hash resolves to no single commit", zap.String("repo", repo), zap.String("hash", hash))
		return "", nil
	}
	if err != nil {
		return "", &UpstreamError{fmt.Errorf("resolve %s@%s: %w", repo, hash, err)}
	}
	full = strings.ToLower(full)
	if !model.IsFullCommit(full) {
		return "", &UpstreamError{fmt.Errorf("resolve %s@%s: %q is not a full hash", repo, hash, full)}
	}
	s.mu.Lock()
	if len(s.resolved) >= maxResolved {
		clear(s.resolved)
	}
	s.resolved[key] = full
	s.mu.Unlock()
	return full, nil
}

// discover finds the pull requests that may have brought the commit, to be
// re-read and checked: Bitbucket's commit index first, then rolekeeper's
// own record of pull requests, then the pull requests a webhook hinted at.
// None counts until read checks it carries the commit by full hash.
func (s *Service) discover(ctx context.Context, g *store.Gate, dropped, hints []int) ([]int, error) {
	var ids []int
	add := func(id int) {
		if !slices.Contains(ids, id) && !slices.Contains(dropped, id) {
			ids = append(ids, id)
		}
	}
	prs, indexErr := s.o.Host.CommitPullRequests(ctx, g.Repository, g.Commit)
	if indexErr != nil {
		// The index may be missing (404) or still building: fall back to
		// the store, and keep looking on later re-reads.
		s.log.Info("pull requests of a commit", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.Error(indexErr))
	}
	for _, pr := range prs {
		if pr.State == model.PRMerged || pr.State == model.PROpen {
			add(pr.ID)
		}
	}
	if len(ids) == 0 {
		recs, err := s.o.Store.PRsByCommit(ctx, g.Repository, g.Commit)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.State == model.PRMerged || r.State == model.PROpen {
				add(r.ID)
			}
		}
	}
	if len(ids) == 0 {
		for _, h := range hints {
			add(h)
		}
	}
	if len(ids) == 0 && indexErr != nil && !upstream.IsPermanent(indexErr) {
		return nil, &UpstreamError{fmt.Errorf("pull requests of %s: %w", short(g.Commit), indexErr)}
	}
	return ids, nil
}
