package rules

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

const (
	ruleCode     = "technical-lead/code-review"
	ruleInfra    = "technical-lead/path-review"
	ruleArch     = "chief-architect/path-review"
	ruleTests    = "backend-engineer/unit-tests"
	ruleQA       = "qa-lead/path-review"
	codeLabel    = `technical-lead/code-review (Technical lead / Lead engineer: "Reviews code written by the engineers in the team")`
	leadCheckout = "Technical lead / Lead engineer of team checkout"
)

var newYear = time.Date(2026, 12, 28, 12, 0, 0, 0, time.UTC)

func approved(acc string) model.Approval {
	return model.Approval{AccountID: acc, State: model.ReviewApproved}
}

func changesRequested(acc string) model.Approval {
	return model.Approval{AccountID: acc, State: model.ReviewChangesRequested}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		org    func() *roles.Org // nil: testOrg
		edit   func(s *PRSnapshot)
		check  func(t *testing.T, d Decision)
		noTeam bool
	}{
		{
			name:   "repository owned by no team",
			edit:   func(s *PRSnapshot) { s.Repository = "reloadly/unknown" },
			noTeam: true,
			check: func(t *testing.T, d Decision) {
				wantEq(t, "skipped", d.Skipped, "repository reloadly/unknown is owned by no team in roles.yaml")
				wantEq(t, "team", d.Team, "")
				wantEq(t, "statuses", len(d.Statuses), 0)
				wantEq(t, "request", len(d.Request), 0)
				wantEq(t, "rules", len(d.Rules), 0)
			},
		},
		{
			name: "code review asks the least loaded lead",
			check: func(t *testing.T, d Decision) {
				wantEq(t, "team", d.Team, "checkout")
				wantEq(t, "skipped", d.Skipped, "")
				wantEq(t, "request", requestIDs(d), []string{accMei})
				r := ruleByID(d, ruleCode)
				wantEq(t, "triggered", r.Triggered, true)
				wantEq(t, "met", r.Met, false)
				wantContains(t, "reason", r.Reason, codeLabel)
				wantEq(t, "pick reason", r.Picks[0].Reason, "asked Mei Chen: "+leadCheckout+", fewest open reviews (1)")
				wantEq(t, "shortfall", r.Shortfall, "needs 1 approval from technical-lead")
				wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead")
				wantStatus(t, d, StatusTests, StateSuccessful, "tests changed with the source")
				wantEq(t, "approvals met", d.ApprovalsMet, false)
				for _, id := range []string{ruleInfra, ruleArch, ruleQA} {
					wantEq(t, id+" triggered", ruleByID(d, id).Triggered, false)
				}
			},
		},
		{
			name: "author is never asked",
			edit: func(s *PRSnapshot) { s.Author = model.Actor{AccountID: accMei} },
			check: func(t *testing.T, d Decision) {
				wantEq(t, "request", requestIDs(d), []string{accKofi})
			},
		},
		{
			name: "author is the only lead",
			edit: func(s *PRSnapshot) {
				s.Repository = "reloadly/payments-api"
				s.Author = model.Actor{AccountID: accTom}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "team", d.Team, "payments")
				wantEq(t, "request", len(d.Request), 0)
				r := ruleByID(d, ruleCode)
				wantEq(t, "picks", len(r.Picks), 0)
				wantNote(t, r, "found 0 of 1 people needed (Technical lead / Lead engineer of team payments): Tom Weber is the author of the pull request")
				wantEq(t, "shortfall", r.Shortfall, "needs 1 approval from technical-lead; only 0 other holders can give it")
				wantEq(t, "qa rule limited to checkout", ruleByID(d, ruleQA) == nil, true)
				wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead")
			},
		},
		{
			name: "lead away is skipped with a note",
			edit: func(s *PRSnapshot) {
				s.Now = newYear
				s.Load = map[string]int{accMei: 9, accKofi: 0, accAmara: 5}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "request", requestIDs(d), []string{accAmara})
				wantNote(t, ruleByID(d, ruleCode), "Kofi Mensah is away until 2 Jan 2027")
			},
		},
		{
			name: "sticky reviewer kept although more loaded",
			edit: func(s *PRSnapshot) { s.Reviewers = []string{accKofi} },
			check: func(t *testing.T, d Decision) {
				wantEq(t, "request", requestIDs(d), []string{accKofi})
				wantEq(t, "kept", d.Request[0].Kept, true)
				wantEq(t, "reason", d.Request[0].Reason, "kept Kofi Mensah: already a reviewer, "+leadCheckout)
			},
		},
		{
			name: "sticky reviewer now away is replaced",
			edit: func(s *PRSnapshot) {
				s.Reviewers = []string{accKofi}
				s.Now = newYear
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "request", requestIDs(d), []string{accMei})
				wantEq(t, "kept", d.Request[0].Kept, false)
			},
		},
		{
			name: "reviewer without the role is not kept",
			edit: func(s *PRSnapshot) { s.Reviewers = []string{accRavi} },
			check: func(t *testing.T, d Decision) {
				wantEq(t, "request", requestIDs(d), []string{accMei})
			},
		},
		{
			name: "self-approval ignored",
			edit: func(s *PRSnapshot) {
				s.Author = model.Actor{AccountID: accAmara}
				s.Approvals = []model.Approval{approved(accAmara)}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleCode)
				wantEq(t, "met", r.Met, false)
				wantEq(t, "approved by", len(r.ApprovedBy), 0)
				wantEq(t, "ignored", r.Ignored, []string{"Amara Okafor approved their own pull request: a self-approval does not count"})
				wantEq(t, "request", requestIDs(d), []string{accMei})
			},
		},
		{
			name: "approval by non-holders ignored",
			edit: func(s *PRSnapshot) {
				s.Approvals = []model.Approval{approved(accRavi), approved(accTom), {AccountID: "712020:stranger", Name: "Sam Stranger", State: model.ReviewApproved}}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleCode)
				wantEq(t, "met", r.Met, false)
				wantEq(t, "ignored", r.Ignored, []string{
					"approval by Ravi Patel does not count: not " + leadCheckout,
					"approval by Tom Weber does not count: not " + leadCheckout,
					"approval by Sam Stranger does not count: not " + leadCheckout,
				})
				wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead")
			},
		},
		{
			name: "approval by a holder meets the rule",
			edit: func(s *PRSnapshot) { s.Approvals = []model.Approval{approved(accKofi)} },
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleCode)
				wantEq(t, "met", r.Met, true)
				wantEq(t, "approved by", r.ApprovedBy, []string{accKofi})
				wantEq(t, "approved names", r.ApprovedNames, []string{"Kofi Mensah"})
				wantEq(t, "nobody new asked", len(d.Request), 0)
				wantEq(t, "approvals met", d.ApprovalsMet, true)
				wantStatus(t, d, StatusReview, StateSuccessful, "approved by Kofi Mensah")
			},
		},
		{
			name: "approval by an away holder counts",
			edit: func(s *PRSnapshot) {
				s.Now = newYear
				s.Approvals = []model.Approval{approved(accKofi)}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "met", ruleByID(d, ruleCode).Met, true)
			},
		},
		{
			name: "changes requested by a holder block",
			edit: func(s *PRSnapshot) {
				s.Reviewers = []string{accMei}
				s.Approvals = []model.Approval{changesRequested(accMei), approved(accKofi)}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleCode)
				wantEq(t, "met", r.Met, false)
				wantEq(t, "shortfall", r.Shortfall, "changes requested by Mei Chen")
				wantEq(t, "request", requestIDs(d), []string{accMei})
				wantStatus(t, d, StatusReview, StateInProgress, "changes requested by Mei Chen")
			},
		},
		{
			name: "latest state of a reviewer wins",
			edit: func(s *PRSnapshot) {
				s.Approvals = []model.Approval{changesRequested(accMei), approved(accMei)}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "met", ruleByID(d, ruleCode).Met, true)
			},
		},
		{
			name: "path review matches and one lead answers for two rules",
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"Dockerfile", "helm/values.yaml", "cmd/main.go"}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleInfra)
				wantEq(t, "triggered", r.Triggered, true)
				wantEq(t, "matched", r.MatchedPaths, []string{"Dockerfile", "helm/values.yaml"})
				wantContains(t, "reason", r.Reason, `"Maintains and manages infrastructure and tools"`)
				wantContains(t, "reason", r.Reason, "2 changed files match helm/**, Dockerfile, bitbucket-pipelines.yml (Dockerfile, helm/values.yaml)")
				wantEq(t, "code picks", pickIDs(ruleByID(d, ruleCode).Picks), []string{accMei})
				wantEq(t, "infra picks", pickIDs(r.Picks), []string{accMei})
				wantContains(t, "reuse reason", r.Picks[0].Reason, "already asked for another rule of this pull request")
				wantEq(t, "request", requestIDs(d), []string{accMei})
				wantEq(t, "merged reason", d.Request[0].Reason, "asked Mei Chen: "+leadCheckout+", fewest open reviews (1); also for "+ruleInfra)
				wantStatus(t, d, StatusTests, StateFailed, "source changed without tests: cmd/main.go")
			},
		},
		{
			name: "one approval satisfies two rules of the same role",
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"bitbucket-pipelines.yml"}
				s.Approvals = []model.Approval{approved(accMei)}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "code met", ruleByID(d, ruleCode).Met, true)
				wantEq(t, "infra met", ruleByID(d, ruleInfra).Met, true)
				wantStatus(t, d, StatusReview, StateSuccessful, "approved by Mei Chen")
			},
		},
		{
			name: "two rules of one role need the larger count, not the sum",
			edit: func(s *PRSnapshot) { s.ChangedFiles = []string{"Dockerfile"} },
			check: func(t *testing.T, d Decision) {
				wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead")
			},
		},
		{
			name: "pattern without a slash matches only at the root",
			edit: func(s *PRSnapshot) { s.ChangedFiles = []string{"deploy/Dockerfile", "docs/helm/x.yaml"} },
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleInfra)
				wantEq(t, "triggered", r.Triggered, false)
				wantContains(t, "reason", r.Reason, "not triggered, no changed file matches helm/**, Dockerfile, bitbucket-pipelines.yml")
				wantEq(t, "picks", len(r.Picks), 0)
			},
		},
		{
			name: "organisation-wide role for an API change",
			edit: func(s *PRSnapshot) { s.ChangedFiles = []string{"api/openapi-v2.yaml"} },
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleArch)
				wantEq(t, "triggered", r.Triggered, true)
				wantEq(t, "picks", pickIDs(r.Picks), []string{accRavi})
				wantContains(t, "pick reason", r.Picks[0].Reason, "Chief Architect (organisation-wide)")
				wantEq(t, "request", requestIDs(d), []string{accMei, accRavi})
				wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead, 1 from chief-architect")
				wantStatus(t, d, StatusTests, StateSuccessful, "no source changes")
			},
		},
		{
			name: "unit tests missing",
			edit: func(s *PRSnapshot) { s.ChangedFiles = []string{"internal/refund/refund.go", "README.md"} },
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleTests)
				wantEq(t, "triggered", r.Triggered, true)
				wantEq(t, "met", r.Met, false)
				wantEq(t, "matched", r.MatchedPaths, []string{"internal/refund/refund.go"})
				wantContains(t, "reason", r.Reason, `backend-engineer/unit-tests (Back-end engineer: "Writes unit tests to test the behavior of each task built"): 1 source file changed (internal/refund/refund.go) and no test file`)
				wantStatus(t, d, StatusTests, StateFailed, "source changed without tests: internal/refund/refund.go")
				wantEq(t, "approvals met ignores tests", d.ApprovalsMet, false)
			},
		},
		{
			name: "unit tests present",
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"svc/src/main/java/Refund.java", "svc/src/test/java/RefundTest.java"}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleTests)
				wantEq(t, "triggered", r.Triggered, true)
				wantEq(t, "met", r.Met, true)
				wantContains(t, "reason", r.Reason, "with 1 test file (svc/src/test/java/RefundTest.java)")
				wantStatus(t, d, StatusTests, StateSuccessful, "tests changed with the source")
			},
		},
		{
			name: "only tests changed",
			edit: func(s *PRSnapshot) { s.ChangedFiles = []string{"internal/refund/refund_test.go"} },
			check: func(t *testing.T, d Decision) {
				wantEq(t, "triggered", ruleByID(d, ruleTests).Triggered, false)
				wantStatus(t, d, StatusTests, StateSuccessful, "no source changes")
			},
		},
		{
			name: "draft asks nobody but is evaluated",
			edit: func(s *PRSnapshot) {
				s.Draft = true
				s.ChangedFiles = []string{"main.go"}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "skipped", d.Skipped, "draft pull request: reviewers are requested when it is ready")
				wantEq(t, "request", len(d.Request), 0)
				wantEq(t, "code triggered", ruleByID(d, ruleCode).Triggered, true)
				wantEq(t, "statuses", len(d.Statuses), 2)
				wantStatus(t, d, StatusTests, StateFailed, "source changed without tests: main.go")
			},
		},
		{
			name: "draft with assign_drafts asks",
			edit: func(s *PRSnapshot) {
				s.Draft = true
				s.AssignDrafts = true
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "skipped", d.Skipped, "")
				wantEq(t, "request", requestIDs(d), []string{accMei})
			},
		},
		{
			name: "merged: approvals evaluated, nobody asked",
			edit: func(s *PRSnapshot) {
				s.State = model.PRMerged
				s.ChangedFiles = []string{"Dockerfile"}
				s.Approvals = []model.Approval{approved(accKofi)}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "skipped", d.Skipped, "pull request is merged: approvals are evaluated, nobody is asked")
				wantEq(t, "request", len(d.Request), 0)
				wantEq(t, "code met", ruleByID(d, ruleCode).Met, true)
				wantEq(t, "infra met", ruleByID(d, ruleInfra).Met, true)
				wantEq(t, "approvals met", d.ApprovalsMet, true)
			},
		},
		{
			name: "declined: nobody asked",
			edit: func(s *PRSnapshot) { s.State = model.PRDeclined },
			check: func(t *testing.T, d Decision) {
				wantEq(t, "request", len(d.Request), 0)
				wantEq(t, "approvals met", d.ApprovalsMet, false)
			},
		},
		{
			name: "advisory rule asks but does not block",
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"tests/e2e/refund.spec.ts"}
				s.Approvals = []model.Approval{approved(accMei), changesRequested(accQA)}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleQA)
				wantEq(t, "triggered", r.Triggered, true)
				wantEq(t, "required", r.Required, 0)
				wantEq(t, "met", r.Met, true)
				wantEq(t, "picks", pickIDs(r.Picks), []string{accQA})
				wantNote(t, r, "changes requested by Quinn Adams (advisory rule: it does not block)")
				wantEq(t, "request", requestIDs(d), []string{accQA})
				wantStatus(t, d, StatusReview, StateSuccessful, "approved by Mei Chen")
			},
		},
		{
			name: "matched paths are capped and counted",
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = nil
				for i := 0; i < 30; i++ {
					s.ChangedFiles = append(s.ChangedFiles, fmt.Sprintf("helm/templates/t%02d.yaml", i))
				}
			},
			check: func(t *testing.T, d Decision) {
				r := ruleByID(d, ruleInfra)
				wantEq(t, "matched", len(r.MatchedPaths), 20)
				wantContains(t, "reason", r.Reason, "30 changed files match")
				wantContains(t, "reason", r.Reason, "helm/templates/t04.yaml and 25 more")
			},
		},
		{
			name: "long descriptions are cut to 140 characters",
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = nil
				for i := 0; i < 10; i++ {
					s.ChangedFiles = append(s.ChangedFiles, fmt.Sprintf("internal/a/very/long/package/path/number/%d/implementation_détails.go", i))
				}
			},
			check: func(t *testing.T, d Decision) {
				st := statusByKey(d, StatusTests)
				wantEq(t, "state", st.State, StateFailed)
				if n := utf8.RuneCountInString(st.Description); n != maxDescription || !strings.HasSuffix(st.Description, "…") {
					t.Errorf("description has %d characters: %q", n, st.Description)
				}
			},
		},
		{
			name: "reuse applies only to people eligible for the rule",
			org: func() *roles.Org {
				o := testOrg()
				o.Person("mei").Roles = append(o.Person("mei").Roles, "chief-architect")
				return o
			},
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"api/openapi.yaml"}
				s.Load = map[string]int{accMei: 4, accKofi: 3, accAmara: 5, accRavi: 0}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "code picks", pickIDs(ruleByID(d, ruleCode).Picks), []string{accKofi})
				// Ravi is less loaded, but Kofi is not an architect; Mei
				// would be reused only if she had been asked already.
				wantEq(t, "arch picks", pickIDs(ruleByID(d, ruleArch).Picks), []string{accRavi})
			},
		},
		{
			name: "a person asked for one rule is reused for another role they hold",
			org: func() *roles.Org {
				o := testOrg()
				o.Person("mei").Roles = append(o.Person("mei").Roles, "chief-architect")
				return o
			},
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"api/openapi.yaml"}
				s.Approvals = nil
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "code picks", pickIDs(ruleByID(d, ruleCode).Picks), []string{accMei})
				wantEq(t, "arch picks", pickIDs(ruleByID(d, ruleArch).Picks), []string{accMei})
				wantEq(t, "request", requestIDs(d), []string{accMei})
				wantEq(t, "merged reason", d.Request[0].Reason,
					"asked Mei Chen: "+leadCheckout+", fewest open reviews (1); also for "+ruleArch+" as Chief Architect (organisation-wide)")
			},
		},
		{
			name: "one approval by a person holding two roles meets both rules",
			org: func() *roles.Org {
				o := testOrg()
				o.Person("mei").Roles = append(o.Person("mei").Roles, "chief-architect")
				return o
			},
			edit: func(s *PRSnapshot) {
				s.ChangedFiles = []string{"api/openapi.yaml"}
				s.Approvals = []model.Approval{approved(accMei)}
			},
			check: func(t *testing.T, d Decision) {
				wantEq(t, "code met", ruleByID(d, ruleCode).Met, true)
				wantEq(t, "arch met", ruleByID(d, ruleArch).Met, true)
				wantEq(t, "approvals met", d.ApprovalsMet, true)
			},
		},
		{
			name: "second reviewer of a rule comes after the reused one",
			org: func() *roles.Org {
				o := testOrg()
				for _, r := range o.Rules {
					if r.ID == ruleInfra {
						r.Reviewers, r.Approvals = 2, 2
					}
				}
				return o
			},
			edit: func(s *PRSnapshot) { s.ChangedFiles = []string{"Dockerfile"} },
			check: func(t *testing.T, d Decision) {
				wantEq(t, "infra picks", pickIDs(ruleByID(d, ruleInfra).Picks), []string{accMei, accKofi})
				wantEq(t, "request", requestIDs(d), []string{accMei, accKofi})
				wantStatus(t, d, StatusReview, StateInProgress, "needs 2 approvals from technical-lead")
			},
		},
		{
			name: "equal load is broken by the pull request hash",
			edit: func(s *PRSnapshot) { s.Load = map[string]int{accMei: 2, accKofi: 2, accAmara: 2} },
			check: func(t *testing.T, d Decision) {
				seed := "reloadly/checkout-api#12"
				want, best := "", uint64(0)
				for _, acc := range []string{accMei, accKofi, accAmara} {
					if h := seededHash(seed, acc); want == "" || h < best {
						want, best = acc, h
					}
				}
				wantEq(t, "request", requestIDs(d), []string{want})
				wantContains(t, "reason", d.Request[0].Reason, "tie broken by a hash of "+seed)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			org := testOrg()
			if tc.org != nil {
				org = tc.org()
			}
			s := baseSnapshot()
			if tc.edit != nil {
				tc.edit(&s)
			}
			d := Evaluate(org, s)
			wantEq(t, "evaluated at", d.EvaluatedAt, s.Now)
			wantEq(t, "repository", d.Repository, s.Repository)
			wantEq(t, "commit", d.Commit, s.SourceCommit)
			if !tc.noTeam {
				checkReasons(t, org, d)
			}
			tc.check(t, d)
			// The same input through a fresh engine gives the same decision.
			if again := Compile(org).Evaluate(s); !reflect.DeepEqual(d, again) {
				t.Errorf("second evaluation differs:\n%+v\n%+v", d, again)
			}
		})
	}
}

// checkReasons: every rule's reason names its id, role title and
// responsibility; every status description fits.
func checkReasons(t *testing.T, org *roles.Org, d Decision) {
	t.Helper()
	for _, r := range d.Rules {
		title := org.Role(r.Role).Title
		for _, want := range []string{r.RuleID, title, fmt.Sprintf("%q", r.Responsibility)} {
			if !strings.Contains(r.Reason, want) {
				t.Errorf("rule %s reason %q lacks %q", r.RuleID, r.Reason, want)
			}
		}
	}
	if len(d.Statuses) != 2 {
		t.Errorf("statuses = %+v, want review and tests", d.Statuses)
	}
	for _, s := range d.Statuses {
		if s.Description == "" || utf8.RuneCountInString(s.Description) > maxDescription {
			t.Errorf("status %s description %q", s.Key, s.Description)
		}
	}
}

func pickIDs(ps []Pick) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.AccountID
	}
	return out
}

func wantEq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func wantContains(t *testing.T, what, got, sub string) {
	t.Helper()
	if !strings.Contains(got, sub) {
		t.Errorf("%s = %q, want it to contain %q", what, got, sub)
	}
}

func wantNote(t *testing.T, r *RuleResult, note string) {
	t.Helper()
	if !containsString(r.Notes, note) {
		t.Errorf("rule %s notes %q lack %q", r.RuleID, r.Notes, note)
	}
}

func wantStatus(t *testing.T, d Decision, key, state, desc string) {
	t.Helper()
	s := statusByKey(d, key)
	if s == nil {
		t.Fatalf("no %s status in %+v", key, d.Statuses)
	}
	if s.State != state || s.Description != desc {
		t.Errorf("%s = %s %q, want %s %q", key, s.State, s.Description, state, desc)
	}
}
