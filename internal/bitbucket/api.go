package bitbucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gobb "github.com/ktrysmt/go-bitbucket"

	"github.com/reloadly/rolekeeper/internal/model"
)

// splitRepo checks "workspace/slug" and returns its parts. Workspaces and
// slugs are letters, digits, '-', '_', '.', or a {uuid}.
func splitRepo(repo string) (ws, slug string, err error) {
	ws, slug, ok := strings.Cut(repo, "/")
	if !ok || !repoPart(ws) || !repoPart(slug) {
		return "", "", fmt.Errorf("bitbucket: repository %q: want workspace/slug", repo)
	}
	return ws, slug, nil
}

func repoPart(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.{}", r)) {
			return false
		}
	}
	return true
}

func checkCommit(commit string) error {
	if len(commit) < 7 || len(commit) > 40 {
		return fmt.Errorf("bitbucket: commit %q: want 7 to 40 hex digits", commit)
	}
	for _, r := range commit {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return fmt.Errorf("bitbucket: commit %q: want hex digits", commit)
		}
	}
	return nil
}

func checkID(id int) error {
	if id <= 0 {
		return fmt.Errorf("bitbucket: pull request id %d", id)
	}
	return nil
}

// GetPullRequest reads one pull request with its reviewers and participants.
// (go-bitbucket's PullRequests.Get.)
func (c *Client) GetPullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	lc, st := c.lib(ctx)
	res, err := lc.Repositories.PullRequests.Get(&gobb.PullRequestsOptions{Owner: ws, RepoSlug: slug, ID: strconv.Itoa(id)})
	if err != nil {
		return nil, c.libError(ctx, http.MethodGet, []string{"repositories", ws, slug, "pullrequests", strconv.Itoa(id)}, err, st)
	}
	var w wirePullRequest
	if err := fromLib(res, &w); err != nil || w.ID <= 0 {
		return nil, fmt.Errorf("bitbucket: pull request %s#%d: undecodable answer: %v", repo, id, err)
	}
	return w.pullRequest(repo), nil
}

// ListOptions narrows ListPullRequests.
type ListOptions struct {
	States       []model.PRState // none: Bitbucket's default, OPEN only
	UpdatedSince time.Time       // zero: no bound
	MaxPages     int             // 0: the client's default
}

// ListPullRequests lists pull requests, most recently updated first. The
// list endpoint leaves out reviewers and participants: use GetPullRequest
// for those.
//
// Raw REST: go-bitbucket's PullRequests.List keeps only the last of several
// states, pages 10 at a time and follows next links to any host.
func (c *Client) ListPullRequests(ctx context.Context, repo string, opt ListOptions) ([]model.PullRequest, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLenPR)}, "sort": {"-updated_on"}}
	for _, s := range opt.States {
		q.Add("state", string(s))
	}
	if !opt.UpdatedSince.IsZero() {
		// BBQL refuses a "Z" zone: write the offset out.
		q.Set("q", fmt.Sprintf(`updated_on > "%s"`, opt.UpdatedSince.UTC().Format("2006-01-02T15:04:05.000000-07:00")))
	}
	var out []model.PullRequest
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "pullrequests"), opt.MaxPages, func(raw json.RawMessage) error {
		var w wirePullRequest
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: pull request list of %s: %w", repo, err)
		}
		out = append(out, *w.pullRequest(repo))
		return nil
	})
	return out, err
}

// PullRequestDiffStat lists the files a pull request changes.
//
// Raw REST: go-bitbucket has no pull request diffstat. The endpoint answers
// 302 to the repository diffstat of the pull request's revspec, which is
// then paged with an explicit pagelen.
func (c *Client) PullRequestDiffStat(ctx context.Context, repo string, id int) ([]model.ChangedFile, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	first := c.url(url.Values{"pagelen": {strconv.Itoa(pageLen)}}, "repositories", ws, slug, "pullrequests", strconv.Itoa(id), "diffstat")
	var out []model.ChangedFile
	each := func(raw json.RawMessage) error {
		var w wireDiffStat
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: diffstat of %s#%d: %w", repo, id, err)
		}
		out = append(out, w.file())
		return nil
	}
	resp, err := c.send(ctx, c.noRedirect, http.MethodGet, first, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			return nil, apiError(resp.StatusCode, http.MethodGet, c.endpointOf(first), "redirect without Location", 0, nil)
		}
		target, err := c.sameHost(first, loc)
		if err != nil {
			return nil, err
		}
		target = withPagelen(target, pageLen)
		return out, c.pages(ctx, target, c.maxPages, each)
	}
	// Answered in place (no redirect): this is the first page.
	var p page
	if err := c.decode(ctx, http.MethodGet, resp, &p); err != nil {
		return nil, err
	}
	next, err := c.walk(first, &p, each)
	if err != nil || next == "" {
		return out, err
	}
	if c.maxPages > 1 {
		err = c.pages(ctx, next, c.maxPages-1, each)
	}
	return out, err
}

// PullRequestDiffStatAt lists the files a pull request changes by following
// the pull request's own `links.diffstat` (documented on the pull request
// object; real payloads and GET answers carry it): the repository diffstat
// of the pull request's revspec, the very target of the 302 that
// PullRequestDiffStat follows, one request fewer. The link is followed only
// when it is on the API host, under this repository's diffstat and for this
// pull request (from_pullrequest_id); anything else, or no link, falls back
// to PullRequestDiffStat.
func (c *Client) PullRequestDiffStatAt(ctx context.Context, repo string, id int, link string) ([]model.ChangedFile, error) {
	target, ok := c.diffStatLink(repo, id, link)
	if !ok {
		return c.PullRequestDiffStat(ctx, repo, id)
	}
	var out []model.ChangedFile
	err := c.pages(ctx, withPagelen(target, pageLen), c.maxPages, func(raw json.RawMessage) error {
		var w wireDiffStat
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: diffstat of %s#%d: %w", repo, id, err)
		}
		out = append(out, w.file())
		return nil
	})
	return out, err
}

// diffStatLink checks a pull request's diffstat link (see
// PullRequestDiffStatAt) and returns it absolute.
func (c *Client) diffStatLink(repo string, id int, link string) (string, bool) {
	ws, slug, err := splitRepo(repo)
	if link == "" || err != nil || checkID(id) != nil {
		return "", false
	}
	prefix := c.url(nil, "repositories", ws, slug, "diffstat") + "/"
	abs, err := c.sameHost(prefix, link)
	if err != nil {
		return "", false
	}
	u, err := url.Parse(abs)
	if err != nil || !strings.HasPrefix(strings.ToLower(u.Scheme+"://"+u.Host+u.EscapedPath()), strings.ToLower(prefix)) ||
		u.Query().Get("from_pullrequest_id") != strconv.Itoa(id) {
		return "", false
	}
	return abs, true
}

// withPagelen sets pagelen on a URL unless it is already there.
func withPagelen(u string, n int) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := pu.Query()
	if q.Get("pagelen") == "" {
		q.Set("pagelen", strconv.Itoa(n))
		pu.RawQuery = q.Encode()
	}
	return pu.String()
}

// reviewerRef is a reviewer as the pull request PUT takes it.
type reviewerRef struct {
	AccountID string `json:"account_id,omitempty"`
	UUID      string `json:"uuid,omitempty"`
}

// SetReviewers replaces the pull request's reviewers with exactly the given
// list (read, merge, then call this) and returns the updated pull request.
// Bitbucket's PUT replaces the resource: a field left out is dropped, so the
// body carries the current title and description, read just before, with
// the reviewers. Bitbucket refuses the author as a reviewer and any change
// to a pull request that is not open.
//
// Raw REST: go-bitbucket's PullRequests.Update sends an empty title and
// description and close_source_branch false, blanking the pull request.
func (c *Client) SetReviewers(ctx context.Context, repo string, id int, title, description string, reviewers []model.Actor) (*model.PullRequest, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	if strings.TrimSpace(title) == "" {
		return nil, errors.New("bitbucket: SetReviewers needs the pull request's current title")
	}
	refs := make([]reviewerRef, 0, len(reviewers))
	seen := map[reviewerRef]bool{}
	for _, r := range reviewers {
		ref := reviewerRef{AccountID: r.AccountID}
		if ref.AccountID == "" {
			ref.UUID = r.UUID
		}
		if ref == (reviewerRef{}) {
			return nil, fmt.Errorf("bitbucket: reviewer %q has neither account id nor uuid", r.DisplayName)
		}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	body := struct {
		Title       string        `json:"title"`
		Description string        `json:"description"`
		Reviewers   []reviewerRef `json:"reviewers"`
	}{title, description, refs}
	var w wirePullRequest
	if err := c.call(ctx, http.MethodPut, c.url(nil, "repositories", ws, slug, "pullrequests", strconv.Itoa(id)), body, &w); err != nil {
		return nil, err
	}
	return w.pullRequest(repo), nil
}

// maxActivityPages bounds the activity read: 10 pages of 50, newest first,
// reach far beyond the last push of any pull request a person still
// reviews.
const maxActivityPages = 10

type wireActivity struct {
	Approval       *wireApproval `json:"approval"`
	ChangesRequest *wireApproval `json:"changes_request"`
	Comment        *wireComment  `json:"comment"`
	Update         *struct {
		Author      *wireAccount `json:"author"`
		Date        wireTime     `json:"date"`
		State       string       `json:"state"`
		Source      wireEndpoint `json:"source"`
		Destination wireEndpoint `json:"destination"`
	} `json:"update"`
}

// PullRequestActivity reads the activity log, newest first as Bitbucket
// sends it: dated approvals, change requests, comments and updates (an
// update names the source commit after it, so pushes show as updates whose
// commit changed). At most 10 pages of 50 are read; a longer log is cut at
// its oldest end.
//
// Raw REST: go-bitbucket's PullRequests.Activity reads the first page only.
func (c *Client) PullRequestActivity(ctx context.Context, repo string, id int) ([]model.PRActivity, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLenPR)}}
	var out []model.PRActivity
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "pullrequests", strconv.Itoa(id), "activity"), maxActivityPages, func(raw json.RawMessage) error {
		var w wireActivity
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: activity of %s#%d: %w", repo, id, err)
		}
		switch {
		case w.Approval != nil:
			out = append(out, model.PRActivity{Kind: model.ActivityApproval, User: w.Approval.User.actor(), At: w.Approval.Date.Time})
		case w.ChangesRequest != nil:
			out = append(out, model.PRActivity{Kind: model.ActivityChangesRequest, User: w.ChangesRequest.User.actor(), At: w.ChangesRequest.Date.Time})
		case w.Comment != nil:
			cm := w.Comment.comment()
			out = append(out, model.PRActivity{Kind: model.ActivityComment, User: cm.Author, At: cm.CreatedAt, Comment: &cm})
		case w.Update != nil:
			out = append(out, model.PRActivity{Kind: model.ActivityUpdate, User: w.Update.Author.actor(), At: w.Update.Date.Time,
				State: prState(w.Update.State), SourceCommit: strings.ToLower(w.Update.Source.commit()),
				DestinationBranch: w.Update.Destination.branch()})
		}
		return nil
	})
	return out, err
}

type wireCommitFull struct {
	Hash   string   `json:"hash"`
	Date   wireTime `json:"date"`
	Author struct {
		Raw  string       `json:"raw"`
		User *wireAccount `json:"user"`
	} `json:"author"`
}

func (w *wireCommitFull) commit() model.Commit {
	return model.Commit{Hash: strings.ToLower(w.Hash), Author: w.Author.User.actor(), AuthorRaw: w.Author.Raw, Date: w.Date.Time}
}

// maxCommitPages bounds the commits read: 40 pages of 50 (the endpoint's
// page size is not documented above 50 everywhere; 50 is accepted).
const maxCommitPages = 40

// PullRequestCommits lists the commits a pull request brings, newest first,
// with their authors: Author is set only when Bitbucket mapped the commit's
// email to an account (AuthorRaw always is). A list longer than 2,000
// commits is cut and reported as an error, since a caller deciding who
// wrote the code must not judge on part of it.
//
// Raw REST: go-bitbucket's PullRequests.Commits reads one page of 10.
func (c *Client) PullRequestCommits(ctx context.Context, repo string, id int) ([]model.Commit, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLenPR)}}
	var out []model.Commit
	u := c.url(q, "repositories", ws, slug, "pullrequests", strconv.Itoa(id), "commits")
	for n := 1; ; n++ {
		var p page
		if err := c.call(ctx, http.MethodGet, u, nil, &p); err != nil {
			return nil, err
		}
		next, err := c.walk(u, &p, func(raw json.RawMessage) error {
			var w wireCommitFull
			if err := json.Unmarshal(raw, &w); err != nil {
				return fmt.Errorf("bitbucket: commits of %s#%d: %w", repo, id, err)
			}
			out = append(out, w.commit())
			return nil
		})
		if err != nil {
			return nil, err
		}
		if next == "" {
			return out, nil
		}
		if n >= maxCommitPages {
			return nil, fmt.Errorf("bitbucket: commits of %s#%d: more than %d pages", repo, id, maxCommitPages)
		}
		u = next
	}
}

// GetCommit reads one commit; a short hash (7 to 39 hex, such as the 12 of
// webhook payloads) comes back with its full 40-hex hash. A hash that names
// no commit, or more than one, is a 404 (upstream.IsNotFound).
//
// Raw REST: go-bitbucket's Commits.GetCommit answers an untyped map and
// drops the error body.
func (c *Client) GetCommit(ctx context.Context, repo, commit string) (model.Commit, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return model.Commit{}, err
	}
	if err := checkCommit(commit); err != nil {
		return model.Commit{}, err
	}
	var w wireCommitFull
	if err := c.call(ctx, http.MethodGet, c.url(nil, "repositories", ws, slug, "commit", commit), nil, &w); err != nil {
		return model.Commit{}, err
	}
	got := w.commit()
	if len(got.Hash) != 40 || !strings.HasPrefix(got.Hash, strings.ToLower(commit)) {
		return model.Commit{}, fmt.Errorf("bitbucket: commit %s of %s: answer names %q", commit, repo, w.Hash)
	}
	return got, nil
}

// MainBranch is the repository's main branch (mainbranch.name of
// GET repositories/{ws}/{slug}). Called through the REST API: go-bitbucket's
// Repository.Get decodes the whole resource into a struct that drops
// unknown fields silently, and one field is all that is needed.
func (c *Client) MainBranch(ctx context.Context, repo string) (string, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	var w struct {
		MainBranch *struct {
			Name string `json:"name"`
		} `json:"mainbranch"`
	}
	if err := c.call(ctx, http.MethodGet, c.url(nil, "repositories", ws, slug), nil, &w); err != nil {
		return "", err
	}
	if w.MainBranch == nil || w.MainBranch.Name == "" {
		return "", fmt.Errorf("bitbucket: repository %s names no main branch", repo)
	}
	return w.MainBranch.Name, nil
}

// ResolveCommit expands a short hash to the full 40-hex one Bitbucket
// knows; a full hash is checked to exist.
func (c *Client) ResolveCommit(ctx context.Context, repo, commit string) (string, error) {
	got, err := c.GetCommit(ctx, repo, commit)
	if err != nil {
		return "", err
	}
	return got.Hash, nil
}

// SetCommitStatus creates or overwrites (same key) a build status on a
// commit. (go-bitbucket's Commits.CreateCommitStatus.)
func (c *Client) SetCommitStatus(ctx context.Context, repo, commit string, st model.CommitStatus) error {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if err := checkCommit(commit); err != nil {
		return err
	}
	if st.Key == "" || st.State == "" || st.URL == "" {
		return fmt.Errorf("bitbucket: commit status needs key, state and url (got %q, %q, %q)", st.Key, st.State, st.URL)
	}
	lc, cs := c.lib(ctx)
	_, err = lc.Repositories.Commits.CreateCommitStatus(
		&gobb.CommitsOptions{Owner: ws, RepoSlug: slug, Revision: commit},
		&gobb.CommitStatusOptions{Key: st.Key, Url: st.URL, State: st.State, Name: st.Name, Description: st.Description},
	)
	if err != nil {
		return c.libError(ctx, http.MethodPost, []string{"repositories", ws, slug, "commit", commit, "statuses", "build"}, err, cs)
	}
	return nil
}

// GetCommitStatus reads one build status; upstream.IsNotFound(err) when
// there is none with that key. (go-bitbucket's Commits.GetCommitStatus.)
func (c *Client) GetCommitStatus(ctx context.Context, repo, commit, key string) (*model.CommitStatus, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkCommit(commit); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, errors.New("bitbucket: commit status key is empty")
	}
	lc, cs := c.lib(ctx)
	res, err := lc.Repositories.Commits.GetCommitStatus(&gobb.CommitsOptions{Owner: ws, RepoSlug: slug, Revision: commit}, url.PathEscape(key))
	if err != nil {
		return nil, c.libError(ctx, http.MethodGet, []string{"repositories", ws, slug, "commit", commit, "statuses", "build", key}, err, cs)
	}
	var w wireStatus
	if err := fromLib(res, &w); err != nil {
		return nil, fmt.Errorf("bitbucket: commit status %s: undecodable answer: %w", key, err)
	}
	s := w.status()
	if s.Commit == "" {
		s.Commit = commit
	}
	return &s, nil
}

// PullRequestStatuses lists the build statuses of a pull request's source
// commit.
//
// Raw REST: go-bitbucket's PullRequests.Statuses follows next links to any
// host, 10 to a page.
func (c *Client) PullRequestStatuses(ctx context.Context, repo string, id int) ([]model.CommitStatus, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLenPR)}}
	var out []model.CommitStatus
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "pullrequests", strconv.Itoa(id), "statuses"), 0, func(raw json.RawMessage) error {
		var w wireStatus
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: statuses of %s#%d: %w", repo, id, err)
		}
		out = append(out, w.status())
		return nil
	})
	return out, err
}

// CreateComment posts a comment (markdown) on a pull request.
// (go-bitbucket's PullRequests.AddComment.)
func (c *Client) CreateComment(ctx context.Context, repo string, id int, body string) (model.Comment, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return model.Comment{}, err
	}
	if err := checkID(id); err != nil {
		return model.Comment{}, err
	}
	lc, cs := c.lib(ctx)
	res, err := lc.Repositories.PullRequests.AddComment(&gobb.PullRequestCommentOptions{Owner: ws, RepoSlug: slug, PullRequestID: strconv.Itoa(id), Content: body})
	if err != nil {
		return model.Comment{}, c.libError(ctx, http.MethodPost, []string{"repositories", ws, slug, "pullrequests", strconv.Itoa(id), "comments"}, err, cs)
	}
	var w wireComment
	if err := fromLib(res, &w); err != nil || w.ID == "" {
		return model.Comment{}, fmt.Errorf("bitbucket: comment on %s#%d: undecodable answer: %v", repo, id, err)
	}
	return w.comment(), nil
}

// UpdateComment replaces a comment's text. (go-bitbucket's
// PullRequests.UpdateComment.)
func (c *Client) UpdateComment(ctx context.Context, repo string, id int, commentID, body string) error {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	if n, err := strconv.Atoi(commentID); err != nil || n <= 0 {
		return fmt.Errorf("bitbucket: comment id %q", commentID)
	}
	lc, cs := c.lib(ctx)
	_, err = lc.Repositories.PullRequests.UpdateComment(&gobb.PullRequestCommentOptions{Owner: ws, RepoSlug: slug, PullRequestID: strconv.Itoa(id), CommentId: commentID, Content: body})
	if err != nil {
		return c.libError(ctx, http.MethodPut, []string{"repositories", ws, slug, "pullrequests", strconv.Itoa(id), "comments", commentID}, err, cs)
	}
	return nil
}

// ListComments lists a pull request's comments, oldest first, leaving out
// deleted ones.
//
// Raw REST: go-bitbucket's PullRequests.GetComments follows every next link
// to any host.
func (c *Client) ListComments(ctx context.Context, repo string, id int, maxPages int) ([]model.Comment, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLen)}}
	var out []model.Comment
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "pullrequests", strconv.Itoa(id), "comments"), maxPages, func(raw json.RawMessage) error {
		var w wireComment
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: comments of %s#%d: %w", repo, id, err)
		}
		if !w.Deleted {
			out = append(out, w.comment())
		}
		return nil
	})
	return out, err
}

// CommitPullRequests lists the pull requests that contain a commit. It
// needs Bitbucket's pull request commit-links index: a 404 (upstream.IsNotFound)
// may mean the index does not exist, a Temporary error that it is being
// built.
//
// Raw REST: go-bitbucket's PullRequests.GetByCommit follows next links to
// any host, 10 to a page.
func (c *Client) CommitPullRequests(ctx context.Context, repo, commit string) ([]model.PullRequest, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkCommit(commit); err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLenPR)}}
	var out []model.PullRequest
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "commit", commit, "pullrequests"), 0, func(raw json.RawMessage) error {
		var w wirePullRequest
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: pull requests of %s: %w", commit, err)
		}
		out = append(out, *w.pullRequest(repo))
		return nil
	})
	return out, err
}

type wireDeployment struct {
	UUID  string `json:"uuid"`
	State struct {
		Name   string `json:"name"`
		URL    string `json:"url"`
		Status *struct {
			Name string `json:"name"`
		} `json:"status"`
		StartDate      wireTime `json:"start_date"`
		CompletionDate wireTime `json:"completion_date"`
		StartedOn      wireTime `json:"started_on"`
		CompletedOn    wireTime `json:"completed_on"`
	} `json:"state"`
	Environment struct {
		UUID string `json:"uuid"`
		Name string `json:"name"`
	} `json:"environment"`
	Release struct {
		Name     string      `json:"name"` // "#186"
		URL      string      `json:"url"`
		Commit   *wireCommit `json:"commit"`
		Pipeline *struct {
			UUID string `json:"uuid"`
		} `json:"pipeline"`
		CreatedOn wireTime `json:"created_on"`
	} `json:"release"`
	LastUpdateTime wireTime `json:"last_update_time"`
}

func (w *wireDeployment) deployment() model.Deployment {
	d := model.Deployment{
		UUID:        w.UUID,
		Environment: w.Environment.Name,
		EnvUUID:     w.Environment.UUID,
		State:       w.State.Name,
		URL:         w.State.URL,
	}
	if w.State.Status != nil {
		d.Status = w.State.Status.Name
	}
	if w.Release.Commit != nil {
		d.Commit = w.Release.Commit.Hash
	}
	if w.Release.Pipeline != nil {
		d.PipelineUUID = w.Release.Pipeline.UUID
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(w.Release.Name, "#")); err == nil {
		d.BuildNumber = n
	}
	if d.URL == "" {
		d.URL = w.Release.URL
	}
	for _, t := range []wireTime{w.State.CompletionDate, w.State.CompletedOn, w.LastUpdateTime, w.State.StartDate, w.State.StartedOn, w.Release.CreatedOn} {
		if !t.IsZero() {
			d.At = t.Time
			break
		}
	}
	return d
}

// ListDeployments lists a repository's Pipelines deployments. Bitbucket
// names only the environment's uuid, so names are looked up in
// environments/ when needed.
//
// Raw REST: go-bitbucket has no deployments endpoint, and its
// ListEnvironments reads one page and panics on an answer without values.
func (c *Client) ListDeployments(ctx context.Context, repo string, maxPages int) ([]model.Deployment, error) {
	ws, slug, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	q := url.Values{"pagelen": {strconv.Itoa(pageLenPR)}}
	var out []model.Deployment
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "deployments", ""), maxPages, func(raw json.RawMessage) error {
		var w wireDeployment
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("bitbucket: deployments of %s: %w", repo, err)
		}
		out = append(out, w.deployment())
		return nil
	})
	if err != nil {
		return nil, err
	}
	need := false
	for _, d := range out {
		need = need || d.Environment == "" && d.EnvUUID != ""
	}
	if !need {
		return out, nil
	}
	names := map[string]string{}
	err = c.pages(ctx, c.url(q, "repositories", ws, slug, "environments", ""), maxPages, func(raw json.RawMessage) error {
		var e struct {
			UUID string `json:"uuid"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bitbucket: environments of %s: %w", repo, err)
		}
		names[e.UUID] = e.Name
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Environment == "" {
			out[i].Environment = names[out[i].EnvUUID]
		}
	}
	return out, nil
}

// CurrentUser is the account the client's credentials belong to.
// (go-bitbucket's User.Profile.)
func (c *Client) CurrentUser(ctx context.Context) (a model.Actor, err error) {
	lc, cs := c.lib(ctx)
	defer func() {
		// Profile type-asserts the answer to an object and panics otherwise.
		if r := recover(); r != nil {
			a, err = model.Actor{}, apiError(http.StatusOK, http.MethodGet, "GET /user", fmt.Sprint("undecodable answer: ", r), 0, nil)
		}
	}()
	u, err := lc.User.Profile()
	if err != nil {
		return model.Actor{}, c.libError(ctx, http.MethodGet, []string{"user"}, err, cs)
	}
	nick := u.Nickname
	if nick == "" {
		nick = u.Username
	}
	return model.Actor{AccountID: u.AccountId, UUID: u.Uuid, DisplayName: u.DisplayName, Nickname: nick}, nil
}
