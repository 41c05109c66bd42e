package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// prKindsYAML holds one rule of each pull-request kind, deploy-approval
// and test-plan. Team web has only code-review; payments has them all.
const prKindsYAML = `version: 1
organization: Test
roles:
  technical-lead:
    title: Technical lead
    responsibilities:
      - text: Reviews code written by the engineers in the team
        enforce:
          code-review: {reviewers: 1, approvals: 1}
  devops:
    title: DevOps engineer
    responsibilities:
      - text: Owns the infrastructure
        enforce:
          path-review: {paths: ["infra/**"], approvals: 1, invalidate_on_push: true, teams: [payments]}
  engineer:
    title: Back-end engineer
    responsibilities:
      - text: Writes unit tests
        enforce:
          unit-tests: {source_paths: ["**/*.go"], test_paths: ["**/*_test.go"], teams: [payments]}
  product-owner:
    title: Product owner
    responsibilities:
      - text: Approves production deployments
        enforce:
          deploy-approval: {environments: [Production], teams: [payments]}
  qa:
    title: QA lead
    responsibilities:
      - text: Creates test plans
        enforce:
          test-plan: {issue_types: [Epic]}
teams:
  payments:
    repositories: [acme/pay]
    jira_projects: [PAY]
  web:
    repositories: [acme/web]
people:
  - {id: tia, name: Tia, account_id: "acc-tia", roles: [technical-lead], teams: [payments, web]}
  - {id: tom, name: Tom, account_id: "acc-tom", roles: [technical-lead], teams: [payments, web]}
  - {id: dev, name: Dev, account_id: "acc-dev", roles: [devops], teams: [payments]}
  - {id: eli, name: Eli, account_id: "acc-eli", roles: [engineer], teams: [payments, web]}
  - {id: pat, name: Pat, account_id: "acc-pat", roles: [product-owner], teams: [payments]}
`

func prKindsOrg(t *testing.T) *roles.Org { return kindsOrg(t, prKindsYAML) }

// Every pull-request kind of the registry rolls up into a status every
// decision carries, and kinds sharing a merge check share its topics only.
func TestPRKindsRegistered(t *testing.T) {
	statuses := map[string]bool{}
	for _, s := range prStatuses {
		statuses[s.key] = true
	}
	topics := map[string]*MergeCheck{}
	n := 0
	for _, k := range Registry {
		if k.PR == nil {
			continue
		}
		n++
		if !statuses[k.PR.Status] {
			t.Errorf("kind %s rolls up into %q, which no decision carries", k.Kind, k.PR.Status)
		}
		if k.PR.evaluate == nil {
			t.Errorf("kind %s has no evaluation", k.Kind)
		}
		if c := k.PR.Merge; c != nil {
			for _, topic := range []string{c.Held, c.Violated} {
				if other, ok := topics[topic]; ok && other != c {
					t.Errorf("topic %s used by two merge checks", topic)
				}
				topics[topic] = c
			}
		}
	}
	if n != 3 {
		t.Errorf("%d pull-request kinds registered, want code-review, path-review and unit-tests", n)
	}
}

// What the workflow reads for a team follows from its rules' kinds.
func TestNeedsFilesAndPushTime(t *testing.T) {
	e := Compile(prKindsOrg(t))
	for _, tc := range []struct {
		team            string
		files, pushTime bool
	}{
		{"payments", true, true}, // path-review (invalidate_on_push) and unit-tests
		{"web", false, false},    // code-review only, without invalidate_on_push
		{"nope", false, false},
	} {
		if got := e.NeedsFiles(tc.team); got != tc.files {
			t.Errorf("%s: NeedsFiles %v, want %v", tc.team, got, tc.files)
		}
		if got := e.NeedsPushTime(tc.team); got != tc.pushTime {
			t.Errorf("%s: NeedsPushTime %v, want %v", tc.team, got, tc.pushTime)
		}
	}
}

// Every finding key rolekeeper ever stored keeps its shape.
func TestFindingKeysUnchanged(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{FindingKey(TopicMergeUnapproved, "ws/slug#12"), "merge-unapproved:ws/slug#12"},
		{FindingKey(TopicMergeApproved, "ws/slug#12"), "merge-approved:ws/slug#12"},
		{FindingKey(TopicMergeUntested, "ws/slug#12"), "merge-untested:ws/slug#12"},
		{FindingKey(TopicMergeTested, "ws/slug#12"), "merge-tested:ws/slug#12"},
		{FindingKey(TopicDeploy, "ws/slug", "{d1}"), "deploy:ws/slug:{d1}"},
		{FindingKey(string(KindBreakGlass), "g1"), "break-glass:g1"},
		{FindingKey(string(roles.KindStoryPoints), "PAY-7"), "story-points:PAY-7"},
		{FindingKey(TopicTestPlanNotDone, "10001", "PAY-7"), "test-plan-not-done:10001:PAY-7"},
		{FindingKey(string(KindBacklog), "PAY-7"), "backlog:PAY-7"},
	} {
		if tc.got != tc.want {
			t.Errorf("key %q, want %q", tc.got, tc.want)
		}
		if FindingTopic(tc.want) != strings.SplitN(tc.want, ":", 2)[0] {
			t.Errorf("topic of %q: %q", tc.want, FindingTopic(tc.want))
		}
	}
}

func TestMergeFindings(t *testing.T) {
	org := prKindsOrg(t)
	merged := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	type want struct {
		key, kind, rule string
		held            bool
		reason          []string
		details         string
	}
	for _, tc := range []struct {
		name      string
		repo      string
		files     []string
		approvals []model.Approval
		want      []want
	}{
		{
			name: "approved and tested", repo: "acme/pay", files: []string{"pay.go", "pay_test.go"},
			approvals: []model.Approval{approved("acc-tom")},
			want: []want{
				{key: "merge-approved:acme/pay#7", kind: "code-review", rule: "technical-lead/code-review", held: true,
					reason: []string{"merged by Tia with the required approvals: technical-lead/code-review (Technical lead: \"Reviews code written by the engineers in the team\"): approved by Tom"}},
				{key: "merge-tested:acme/pay#7", kind: "unit-tests", rule: "engineer/unit-tests", held: true,
					reason: []string{"merged by Tia with tests changed alongside the source: engineer/unit-tests"}},
			},
		},
		{
			name: "self-approved, untested, infrastructure unreviewed", repo: "acme/pay", files: []string{"infra/main.tf", "pay.go"},
			approvals: []model.Approval{approved("acc-eli")},
			want: []want{
				{key: "merge-unapproved:acme/pay#7", kind: "code-review", rule: "technical-lead/code-review",
					reason: []string{"merged by Tia without the required approvals: technical-lead/code-review", "needs 1 approval from technical-lead",
						"devops/path-review (DevOps engineer: \"Owns the infrastructure\"): needs 1 approval from devops", "approved only by its author, Eli"},
					details: "Eli approved their own pull request: a self-approval does not count"},
				{key: "merge-untested:acme/pay#7", kind: "unit-tests", rule: "engineer/unit-tests",
					reason: []string{"merged by Tia with source changed and no test: engineer/unit-tests", "no test file changed with 1 source file"}},
			},
		},
		{
			name: "code-review only: no tests finding", repo: "acme/web", files: []string{"web.go"},
			want: []want{{key: "merge-unapproved:acme/web#7", kind: "code-review", rule: "technical-lead/code-review",
				reason: []string{"without the required approvals"}, details: "no approval counted"}},
		},
		{
			name: "docs only: no source, no tests finding", repo: "acme/pay", files: []string{"README.md"},
			approvals: []model.Approval{approved("acc-tom")},
			want:      []want{{key: "merge-approved:acme/pay#7", kind: "code-review", rule: "technical-lead/code-review", held: true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			author := model.Actor{AccountID: "acc-eli"}
			d := Evaluate(org, PRSnapshot{Repository: tc.repo, Number: 7, Author: author, State: model.PRMerged,
				ChangedFiles: tc.files, Approvals: tc.approvals, Now: merged})
			fs := MergeFindings(org, d, Merge{Repository: tc.repo, Number: 7, URL: "https://bb/pr/7", Team: d.Team,
				At: merged, Now: merged.Add(time.Minute), By: model.Actor{AccountID: "acc-tia"}, Author: author, Approvals: tc.approvals})
			if len(fs) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %+v", len(fs), len(tc.want), fs)
			}
			for i, w := range tc.want {
				f := fs[i]
				if f.Key != w.key || f.Kind != w.kind || f.RuleID != w.rule || f.Held != w.held {
					t.Errorf("finding %d: %s %s %s held=%v, want %+v", i, f.Key, f.Kind, f.RuleID, f.Held, w)
				}
				for _, r := range w.reason {
					if !strings.Contains(f.Reason, r) {
						t.Errorf("finding %d reason %q lacks %q", i, f.Reason, r)
					}
				}
				if f.Details != w.details {
					t.Errorf("finding %d details %q, want %q", i, f.Details, w.details)
				}
				if f.Team != d.Team || f.Ref != tc.repo+"#7" || f.URL != "https://bb/pr/7" || f.Actor != "acc-tia" ||
					f.Subject != model.SubjectPullRequest || !f.OccurredAt.Equal(merged) || !f.RecordedAt.Equal(merged.Add(time.Minute)) {
					t.Errorf("finding %d: %+v", i, f)
				}
			}
		})
	}
}

func TestToAsk(t *testing.T) {
	d := Decision{Request: []Pick{{AccountID: "a"}, {AccountID: "b"}, {AccountID: "c"}, {AccountID: ""}, {AccountID: "author"}}}
	for _, tc := range []struct {
		name       string
		a          Asking
		add, again []string
	}{
		{"everyone new", Asking{Author: "author"}, []string{"a", "b", "c"}, nil},
		{"already a reviewer", Asking{Author: "author", Reviewers: []string{"b"}}, []string{"a", "c"}, nil},
		{"never twice", Asking{Author: "author", Asked: []string{"a", "b"}, Reviewers: []string{"b"}}, []string{"c"}, []string{"a"}},
		{"draft", Asking{Author: "author", Draft: true}, nil, nil},
		{"draft, drafts assigned", Asking{Author: "author", Draft: true, AssignDrafts: true}, []string{"a", "b", "c"}, nil},
	} {
		add, again := ToAsk(d, tc.a)
		var ids []string
		for _, p := range add {
			ids = append(ids, p.AccountID)
		}
		if !reflect.DeepEqual(ids, tc.add) || !reflect.DeepEqual(again, tc.again) {
			t.Errorf("%s: add %v again %v, want %v %v", tc.name, ids, again, tc.add, tc.again)
		}
	}
}

func TestDeployFinding(t *testing.T) {
	org := prKindsOrg(t)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	commit := strings.Repeat("ab", 20)
	if DeployRule(org, "web", "production") != nil || !Gated(org, "payments") || Gated(org, "web") {
		t.Fatal("only payments' production is gated")
	}
	rule := DeployRule(org, "payments", "production") // environments compare without case
	if rule == nil || rule.ID != "product-owner/deploy-approval" {
		t.Fatalf("rule %+v", rule)
	}
	d := model.Deployment{UUID: "{d1}", Environment: "production", Commit: commit, State: "COMPLETED", At: at, URL: "https://bb/d1"}
	for _, tc := range []struct {
		name   string
		opened *OpenedBy
		held   bool
		reason string
		actor  string
	}{
		{"no gate", nil, false, `deployment of abababababab to production had no approved gate: product-owner/deploy-approval (product-owner: "Approves production deployments") needs an approval from product-owner who did not author the change`, ""},
		{"approved", &OpenedBy{Gate: "g1", By: "acc-pat"}, true, "deployment to production went through gate g1, approved by Pat", "acc-pat"},
		{"break-glass", &OpenedBy{Gate: "g2", By: "acc-raj", BreakGlass: true}, true, "deployment to production went through gate g2, opened by break-glass (acc-raj)", "acc-raj"},
	} {
		f := DeployFinding(org, "payments", rule, "acme/pay", d, tc.opened)
		if f.Key != "deploy:acme/pay:{d1}" || f.Held != tc.held || f.Reason != tc.reason || f.Actor != tc.actor ||
			f.Ref != "acme/pay@abababababab → production" || f.Kind != "deploy-approval" || f.RuleID != rule.ID || !f.OccurredAt.Equal(at) {
			t.Errorf("%s: %+v", tc.name, f)
		}
	}
	for _, tc := range []struct {
		state, status string
		ran           bool
	}{
		{"COMPLETED", "SUCCESSFUL", true}, {"IN_PROGRESS", "", true}, {"", "", true},
		{"COMPLETED", "STOPPED", false}, {"PENDING", "", false}, {"UNDEPLOYED", "", false},
	} {
		if got := Deployed(model.Deployment{State: tc.state, Status: tc.status}); got != tc.ran {
			t.Errorf("Deployed(%s, %s) = %v", tc.state, tc.status, got)
		}
	}
}

func TestBreakGlassFinding(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	commit := strings.Repeat("cd", 20)
	for _, tc := range []struct{ byName, reason string }{
		{"Raj", "production deployment of acme/pay@cdcdcdcdcdcd: break-glass by Raj: hotfix"},
		{"", "production deployment of acme/pay@cdcdcdcdcdcd: break-glass hotfix"}, // the admin token
	} {
		f := BreakGlassFinding(GlassBreak{Gate: "g1", RuleID: "product-owner/deploy-approval", Team: "payments", Repository: "acme/pay",
			Commit: commit, Environment: "production", URL: "https://rk/api/v1/gates/g1", By: "acc-raj", ByName: tc.byName,
			Reason: "hotfix", At: at, Now: at})
		if f.Key != "break-glass:g1" || f.Kind != "break-glass" || f.Held || f.Reason != tc.reason || f.Ref != "g1" ||
			f.Details != "gate g1, rule product-owner/deploy-approval, commit "+commit || f.Subject != model.SubjectGate {
			t.Errorf("%q: %+v", tc.byName, f)
		}
	}
}

func TestReleaseFinding(t *testing.T) {
	org := prKindsOrg(t)
	plans := ReleaseRules(org, "payments")
	if len(plans) != 1 || ReleaseRule(plans, "epic") == nil || ReleaseRule(plans, "Story") != nil {
		t.Fatalf("plans %v", plans)
	}
	rule := plans[0]
	v := model.Version{ID: "10001", Name: "1.4"}
	epic := func(subtasks ...model.IssueRef) model.Issue {
		return model.Issue{Key: "PAY-7", Type: "Epic", Subtasks: subtasks}
	}
	for _, tc := range []struct {
		name  string
		is    model.Issue
		due   bool
		state string
	}{
		{"no test plan", epic(), true, "has no test plan"},
		{"plan not done", epic(model.IssueRef{Key: "PAY-8", Summary: TestPlanPrefix + " PAY-7", Status: "In Progress"}), true, "has its test plan PAY-8 not done (In Progress)"},
		{"plan done", epic(model.IssueRef{Key: "PAY-8", Summary: TestPlanPrefix + " PAY-7", Status: "Done", StatusDone: true}), false, ""},
	} {
		got, due := ReleaseFinding(org, "payments", rule, v, tc.is)
		if due != tc.due {
			t.Errorf("%s: due %v", tc.name, due)
			continue
		}
		if !due {
			continue
		}
		f := got.Finding
		wantReason := "test-plan: version 1.4 was released while Epic PAY-7 " + tc.state + `; responsibility of the QA lead ("Creates test plans")`
		if f.Key != "test-plan-not-done:10001:PAY-7" || f.Reason != wantReason || f.Details != "version 1.4" || f.RuleID != "qa/test-plan" {
			t.Errorf("%s: %+v", tc.name, f)
		}
		if got.Head != "Version 1.4 was released while this epic" || !strings.HasPrefix(got.Comment, got.Head+" "+tc.state+".") {
			t.Errorf("%s: comment %q / %q", tc.name, got.Head, got.Comment)
		}
	}
}

func TestStoryPointsFinding(t *testing.T) {
	is := model.Issue{Key: "PAY-9"}
	vs := []IssueRuleResult{
		{RuleID: "engineer/story-points", RoleTitle: "Back-end engineer", Responsibility: "Estimates", Sprint: "S1", MissingPoints: true, MissingUserStory: true},
		{RuleID: "front/story-points", RoleTitle: "Front-end engineer", Responsibility: "Estimates too", Sprint: "S1", MissingPoints: true},
	}
	f, comment := StoryPointsFinding(is, "payments", vs)
	want := `story-points: PAY-9 in open sprint "S1" has no story points and without a user story ("As a …, I want …, so that …"); ` +
		`responsibility of the Back-end engineer ("Estimates"), the Front-end engineer ("Estimates too")`
	if f.Key != "story-points:PAY-9" || f.Reason != want || f.RuleID != "engineer/story-points" || f.Details != "sprint S1" {
		t.Errorf("%+v", f)
	}
	if !strings.Contains(comment, `the Back-end engineer ("Estimates") and the Front-end engineer ("Estimates too")`) {
		t.Errorf("comment %q", comment)
	}
}

// A pull-request kind is one registry row: this one, known to no workflow
// and to no switch of the engine, is evaluated, rolled up into
// rolekeeper-tests, read files for, explained and judged at the merge.
func TestNewPRKindNeedsOnlyItsRow(t *testing.T) {
	const kind roles.Kind = "size-limit"
	type settings struct{ Max int }
	oversized := &MergeCheck{Held: "merge-small", Violated: "merge-oversized",
		judges: func(RuleResult) bool { return true },
		judge: func(c *mergeCtx, rs []RuleResult, f *model.Finding) bool {
			f.Kind, f.RuleID, f.Reason = rs[0].Kind, rs[0].RuleID, "merged by "+c.merger+": "+orDefault(rs[0].Shortfall, "small enough")
			return rs[0].Met
		}}
	row := KindInfo{Kind: kind, Doc: "pull requests changing more than max files fail rolekeeper-tests", Action: "Split it.",
		PR: &PRKind{Status: StatusTests, Files: true, Merge: oversized, Promise: "at most 2 files change", evaluate: func(ev *evaluation, p *plan) RuleResult {
			set, _ := p.rule.Settings.(settings)
			rr := RuleResult{RuleID: p.rule.ID, Kind: string(p.rule.Kind), Role: p.rule.Role, Responsibility: p.rule.Responsibility,
				Triggered: true, Met: len(ev.s.ChangedFiles) <= set.Max, Reason: p.label + ": at most " + countNoun(set.Max, "file")}
			if !rr.Met {
				rr.MatchedPaths = ev.s.ChangedFiles
				rr.Shortfall = countNoun(len(ev.s.ChangedFiles), "file") + " changed"
			}
			return rr
		}}}
	saved := Registry
	Registry = append(append([]KindInfo(nil), Registry...), row)
	prKinds[kind] = row.PR
	t.Cleanup(func() { Registry = saved; delete(prKinds, kind) })

	b := newOrgBuilder()
	lead := b.role("lead", "Lead", roles.ScopeTeam)
	b.enforce(lead, "Keeps changes small", &roles.Rule{Kind: kind, Settings: settings{Max: 2}})
	b.team("pay", "acme/pay")
	org := b.build()
	e := Compile(org)
	if !e.NeedsFiles("pay") || e.NeedsPushTime("pay") {
		t.Error("the kind reads files and no push time")
	}
	d := e.Evaluate(PRSnapshot{Repository: "acme/pay", Number: 7, State: model.PRMerged, ChangedFiles: []string{"a", "b", "c"}, Now: kindsNow})
	if len(d.Rules) != 1 || d.Rules[0].Met || !d.ApprovalsMet {
		t.Fatalf("decision %+v", d)
	}
	if st := statusByKey(d, StatusTests); st == nil || st.State != StateFailed {
		t.Errorf("tests status %+v", st)
	}
	if c := Comment(d, "https://rk/d/1"); !strings.Contains(c, `lead/size-limit (Lead: "Keeps changes small"): at most 2 files change`) {
		t.Errorf("comment:\n%s", c)
	}
	fs := MergeFindings(org, d, Merge{Repository: "acme/pay", Number: 7, Team: "pay", By: model.Actor{DisplayName: "Ana"}})
	if len(fs) != 1 || fs[0].Key != "merge-oversized:acme/pay#7" || fs[0].Held || fs[0].Reason != "merged by Ana: 3 files changed" {
		t.Errorf("findings %+v", fs)
	}
	if Action(string(kind)) != "Split it." {
		t.Error("action")
	}
}

// The Jira audit searches for the registry's Jira kinds, in its order.
func TestIssueKinds(t *testing.T) {
	want := []roles.Kind{KindBacklog, KindAnalysis, KindRequirements}
	if got := IssueKinds(); !reflect.DeepEqual(got, want) {
		t.Errorf("IssueKinds %v, want %v", got, want)
	}
}

func TestCommentDue(t *testing.T) {
	asked := Decision{Request: []Pick{{AccountID: "a"}}}
	unmet := Decision{Rules: []RuleResult{{Triggered: true}}}
	happy := Decision{Rules: []RuleResult{{Triggered: true, Met: true}, {}}}
	for _, tc := range []struct {
		name string
		d    Decision
		a    Asking
		due  bool
	}{
		{"someone asked", asked, Asking{}, true},
		{"a rule unmet", unmet, Asking{}, true},
		{"every rule happy", happy, Asking{}, false},
		{"draft", unmet, Asking{Draft: true}, false},
		{"draft, drafts assigned", asked, Asking{Draft: true, AssignDrafts: true}, true},
	} {
		if got := CommentDue(tc.d, tc.a); got != tc.due {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

// A gate whose repository no team owns any more stays shut to approvals.
func TestGatePolicy(t *testing.T) {
	org := prKindsOrg(t)
	as := []Authorship{{AccountID: "acc-eli", What: "authored pull request #7"}}
	if dr := GatePolicy(org, "acme/pay", "production", "payments", "product-owner/deploy-approval", as, kindsNow); !dr.Gated ||
		len(dr.Eligible) != 1 || dr.Eligible[0].AccountID != "acc-pat" {
		t.Errorf("owned: %+v", dr)
	}
	dr := GatePolicy(org, "acme/gone", "production", "payments", "product-owner/deploy-approval", as, kindsNow)
	if !dr.Gated || len(dr.Eligible) != 0 || dr.Team != "payments" || dr.RuleID != "product-owner/deploy-approval" ||
		!reflect.DeepEqual(dr.Authors, []string{"acc-eli"}) || !strings.HasSuffix(dr.Reason, ": nobody can approve; only a break-glass opens it") {
		t.Errorf("unowned: %+v", dr)
	}
	if ok, _ := CanApproveDeploy(dr, "acc-pat"); ok {
		t.Error("nobody may approve a gate of an unowned repository")
	}
}
