package prflow

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// statusPost fails the build status post after `skip` of them went through.
func statusPost(skip, status int) bitbuckettest.Fault {
	return bitbuckettest.Fault{Endpoint: "POST /repositories/{ws}/{repo}/commit/{hash}/statuses/build", Skip: skip, Times: 1, Status: status}
}

func storeFilter() store.FindingFilter { return store.FindingFilter{} }

func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// TestRetries: a failure part-way leaves the pull request in a state the
// retry finishes without duplicating anything.
func TestRetries(t *testing.T) {
	errDB := errors.New("database is locked")
	tests := []struct {
		name       string
		inject     func(hs *harness)
		wantErr    func(error) bool
		retryCalls []string // calls of the retry of the same event
	}{
		{
			name:       "status post fails after the PUT: the retry does not PUT again",
			inject:     func(hs *harness) { hs.srv.Fail(statusPost(0, 503)) },
			wantErr:    temporary,
			retryCalls: []string{"SetCommitStatus", "SetCommitStatus", "CreateComment"},
		},
		{
			name:       "second status fails: the retry posts only that one",
			inject:     func(hs *harness) { hs.srv.Fail(statusPost(1, 429)) },
			wantErr:    temporary,
			retryCalls: []string{"SetCommitStatus", "CreateComment"},
		},
		{
			name: "comment post fails: the retry creates exactly one",
			inject: func(hs *harness) {
				hs.srv.Fail(bitbuckettest.Fault{Endpoint: "POST /repositories/{ws}/{repo}/pullrequests/{id}/comments", Times: 1, Status: 500})
			},
			wantErr:    temporary,
			retryCalls: []string{"CreateComment"},
		},
		{
			name:       "crash after the comment was created and stored: the retry neither duplicates nor edits",
			inject:     func(hs *harness) { hs.st.failOutcome = []error{errDB} },
			wantErr:    func(err error) bool { return errors.Is(err, errDB) },
			retryCalls: nil,
		},
		{
			name: "comment created but storing its id failed: the retry adopts it",
			inject: func(hs *harness) {
				once := false
				hs.st.failUpsertIf = func(r *store.PRRecord) error {
					if r.CommentID != "" && !once {
						once = true
						return errDB
					}
					return nil
				}
			},
			wantErr:    func(err error) bool { return errors.Is(err, errDB) },
			retryCalls: nil,
		},
		{
			name: "diffstat fails: nothing else happens, the retry does it all",
			inject: func(hs *harness) {
				hs.srv.Fail(bitbuckettest.Fault{Method: "GET", Path: "/diffstat", Times: 1, Status: 502})
			},
			wantErr:    temporary,
			retryCalls: []string{"PullRequestCommits", "PullRequestDiffStat", "GetPullRequest", "SetReviewers", "SetCommitStatus", "SetCommitStatus", "CreateComment"},
		},
		{
			name: "reviewers refused for good: statuses and comment still posted",
			inject: func(hs *harness) {
				hs.srv.Fail(bitbuckettest.Fault{Endpoint: "PUT /repositories/{ws}/{repo}/pullrequests/{id}", Times: 1, Status: 400})
			},
			wantErr:    permanent,
			retryCalls: []string{"GetPullRequest", "SetReviewers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			pr := newPR()
			hs.upstream(pr, goodFiles...)
			tt.inject(hs)
			ev := event(model.EventPRCreated, pr, lena)
			err := hs.handle(ev)
			if err == nil || !tt.wantErr(err) {
				t.Fatalf("first try: %v", err)
			}
			if d := hs.st.lastDecision(); d.ID != 0 && !strings.Contains(d.Outcome, "error") && !errors.Is(err, errDB) {
				t.Errorf("failed decision outcome %q", d.Outcome)
			}
			hs.host.take()
			// The inbox retries later: after a 429 the client sends
			// nothing until Bitbucket's window opens again.
			hs.now = hs.now.Add(time.Hour)
			calls := hs.mustHandle(ev)
			wantCalls(t, calls, tt.retryCalls...)

			if n := len(hs.srv.Comments(repoPay, 7)); n != 1 {
				t.Errorf("%d comments after the retry, want 1", n)
			}
			if got := hs.reviewerIDs(repoPay, 7); len(got) != 1 {
				t.Errorf("reviewers after the retry %q", got)
			}
			for _, key := range []string{rules.StatusReview, rules.StatusTests} {
				if _, ok := hs.status(repoPay, fullA, key); !ok {
					t.Errorf("no %s after the retry", key)
				}
			}
			// An approval that counts explains nothing new (the status
			// says it): the comment stays.
			lead := model.Actor{AccountID: hs.reviewerIDs(repoPay, 7)[0]}
			calls = hs.mustHandle(approvalEvent(hs.current(repoPay, 7), lead, t0.Add(time.Hour)))
			if count(calls, "CreateComment") != 0 || count(calls, "UpdateComment") != 0 {
				t.Errorf("approval calls %q, want no comment call", calls)
			}
			// An approval that does not count is explained: the one
			// comment is edited.
			calls = hs.mustHandle(approvalEvent(hs.current(repoPay, 7), actor(accPaul, "Paul Kim"), t0.Add(2*time.Hour)))
			if count(calls, "CreateComment") != 0 || count(calls, "UpdateComment") != 1 {
				t.Errorf("ignored approval calls %q, want one comment edit", calls)
			}
		})
	}
}

func TestCommentDeletedUpstream(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	hs.mustHandle(event(model.EventPRCreated, pr, lena))
	hs.deleteComments(repoPay, 7)
	// Paul's approval does not count, and the comment says why: the edit
	// finds it gone (404) and the explanation is posted again.
	paul := actor(accPaul, "Paul Kim")
	calls := hs.mustHandle(approvalEvent(hs.current(repoPay, 7), paul, t0.Add(time.Hour)))
	wantCalls(t, calls, "GetPullRequest", "UpdateComment", "CreateComment")
	if out := hs.st.lastDecision().Outcome; !strings.Contains(out, "comment posted again") {
		t.Errorf("outcome %q", out)
	}
	cs := hs.srv.Comments(repoPay, 7)
	if len(cs) != 1 {
		t.Fatalf("%d comments", len(cs))
	}
	// Later changes edit the new one.
	un := event(model.EventPRUnapproved, hs.current(repoPay, 7), paul)
	un.Approval = &model.Approval{AccountID: paul.AccountID, State: model.ReviewNone}
	calls = hs.mustHandle(un)
	wantCalls(t, calls, "GetPullRequest", "UpdateComment")
	if got := hs.srv.Comments(repoPay, 7); len(got) != 1 || got[0].ID != cs[0].ID {
		t.Errorf("comments %+v", got)
	}
}

func TestDryRun(t *testing.T) {
	hs := newHarness(t, func(o *Options) { o.DryRun = true })
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	calls := hs.mustHandle(event(model.EventPRCreated, pr, lena))
	wantCalls(t, calls, "PullRequestCommits", "PullRequestDiffStat", "GetPullRequest") // reads only
	d := hs.st.lastDecision()
	for _, part := range []string{"dry-run: would ask", "would post review INPROGRESS", "would post tests SUCCESSFUL", "would create comment"} {
		if !strings.Contains(d.Outcome, part) {
			t.Errorf("outcome %q lacks %q", d.Outcome, part)
		}
	}
	if got := hs.reviewerIDs(repoPay, 7); len(got) != 0 {
		t.Errorf("dry-run set reviewers %q", got)
	}
	rec, _ := hs.st.rec(repoPay, 7)
	if rec.CommentID != "" || len(rec.Requested) != 0 || rec.Statuses[rules.StatusReview] != "" {
		t.Errorf("dry-run recorded actions as done: %+v", rec)
	}
	// Redelivered: still says what it would do, and reads nothing again.
	wantCalls(t, hs.mustHandle(event(model.EventPRCreated, pr, lena)))
	if out := hs.st.lastDecision().Outcome; !strings.HasPrefix(out, "dry-run: would ask") {
		t.Errorf("redelivery outcome %q", out)
	}
	// A merge is still judged and recorded.
	wantCalls(t, hs.mustHandle(merged(pr, kofi, t0.Add(time.Hour))))
	fs, _ := hs.st.ListFindings(context.Background(), storeFilter())
	if len(fs) == 0 {
		t.Error("dry-run recorded no finding")
	}
	if v := testutil.ToFloat64(hs.h.m.actions.WithLabelValues(actionReviewers, outcomeDryRun)); v != 1 {
		t.Errorf("reviewers dry_run = %v", v)
	}
}

func TestMetrics(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	hs.mustHandle(event(model.EventPRCreated, pr, lena))
	title := "Add refunds (v2)"
	hs.edit(7, t0.Add(time.Hour), bitbuckettest.Edit{Title: &title})
	hs.mustHandle(event(model.EventPRUpdated, hs.current(repoPay, 7), lena))

	decisions := map[[2]string]float64{
		{"technical-lead/code-review", "unmet"}:         2,
		{"technical-lead/path-review", "not_triggered"}: 2,
		{"backend-engineer/unit-tests", "met"}:          2,
	}
	for l, want := range decisions {
		if got := testutil.ToFloat64(hs.h.m.decisions.WithLabelValues(l[0], l[1])); got != want {
			t.Errorf("decisions%v = %v, want %v", l, got, want)
		}
	}
	actions := map[[2]string]float64{
		{actionReviewers, outcomeOK}:          1,
		{actionReviewers, outcomeSkipped}:     1,
		{actionStatus, outcomeOK}:             2,
		{actionStatus, outcomeSkipped}:        2,
		{actionCommentCreate, outcomeOK}:      1,
		{actionCommentUpdate, outcomeSkipped}: 1,
		{actionCommentUpdate, outcomeOK}:      0,
		{actionStatus, outcomeError}:          0,
		{actionCommentCreate, outcomeSkipped}: 0,
		{actionCommentCreate, outcomeDryRun}:  0,
		{actionReviewers, outcomeError}:       0,
		{actionCommentUpdate, outcomeError}:   0,
		{actionCommentUpdate, outcomeDryRun}:  0,
		{actionStatus, outcomeDryRun}:         0,
		{actionReviewers, outcomeDryRun}:      0,
		{actionCommentCreate, outcomeError}:   0,
	}
	for l, want := range actions {
		if got := testutil.ToFloat64(hs.h.m.actions.WithLabelValues(l[0], l[1])); got != want {
			t.Errorf("actions%v = %v, want %v", l, got, want)
		}
	}
	n, err := testutil.GatherAndCount(hs.reg, "rolekeeper_decisions_total", "rolekeeper_actions_total")
	if err != nil || n == 0 {
		t.Errorf("registry: %d series, %v", n, err)
	}
}
