package rules

import (
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
)

// busySnapshot triggers every rule kind at new year: Kofi is away, Lena
// approved her own pull request, Ravi approved the API change.
func busySnapshot() PRSnapshot {
	s := baseSnapshot()
	s.Now = newYear
	s.ChangedFiles = []string{"Dockerfile", "api/openapi.yaml", "cmd/main_x.go", "tests/e2e/a.ts"}
	s.Approvals = []model.Approval{approved(accRavi), approved(accLena)}
	s.Reviewers = []string{accKofi}
	return s
}

func TestExplain(t *testing.T) {
	org := testOrg()
	tests := []struct {
		name    string
		snap    func() PRSnapshot
		want    []string
		notWant []string
	}{
		{
			name: "every rule kind",
			snap: busySnapshot,
			want: []string{
				"reloadly/checkout-api#12 at 0123456789ab: team checkout\n",
				"evaluated at 2026-12-28T12:00:00Z\n",
				"rules triggered:\n  [waiting] " + codeLabel + ": every pull request in the repositories of team checkout\n",
				"      needs 1 approval from technical-lead\n",
				"      asked Mei Chen: " + leadCheckout + ", fewest open reviews (1)\n",
				"      note: Kofi Mensah is away until 2 Jan 2027\n",
				"      ignored: Lena Berg approved their own pull request: a self-approval does not count\n",
				"  [met] chief-architect/path-review",
				"      approved by Ravi Patel; 1 approval of 1 required\n",
				"  [failed] backend-engineer/unit-tests",
				"  [advisory] qa-lead/path-review",
				"reviewers to request:\n  Mei Chen (mei, 712020:mei): " + leadCheckout + ", fewest open reviews (1)",
				"  Quinn Adams (quinn, 712020:qa): QA Lead (organisation-wide), fewest open reviews (0)\n",
				"approvals: waiting\n",
				"  rolekeeper-review  INPROGRESS  needs 1 approval from technical-lead\n",
				"  rolekeeper-tests   FAILED      source changed without tests: cmd/main_x.go\n",
			},
			notWant: []string{"rules not triggered", "no reviewers requested"},
		},
		{
			name: "quiet rules and a draft",
			snap: func() PRSnapshot {
				s := baseSnapshot()
				s.Draft = true
				s.Approvals = []model.Approval{approved(accMei)}
				return s
			},
			want: []string{
				"no reviewers requested: draft pull request: reviewers are requested when it is ready\n",
				"rules not triggered:\n  technical-lead/path-review (",
				"reviewers to request:\n  nobody\n",
				"approvals: every required approval is in\n",
				"  rolekeeper-review  SUCCESSFUL  approved by Mei Chen\n",
			},
		},
		{
			name: "no team",
			snap: func() PRSnapshot {
				s := baseSnapshot()
				s.Repository = "reloadly/elsewhere"
				return s
			},
			want:    []string{"reloadly/elsewhere#12 at 0123456789ab\n", "no reviewers requested: repository reloadly/elsewhere is owned by no team in roles.yaml\n"},
			notWant: []string{"statuses:", "reviewers to request"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := Explain(Evaluate(org, tc.snap()))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("explain lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("explain holds %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestComment(t *testing.T) {
	org := testOrg()
	const url = "http://127.0.0.1:8080/api/v1/decisions?repository=reloadly/checkout-api&pr=12"
	tests := []struct {
		name    string
		snap    func() PRSnapshot
		url     string
		want    []string
		notWant []string
		once    []string // substrings that appear exactly once
	}{
		{
			name: "every rule kind",
			snap: busySnapshot,
			url:  url,
			want: []string{
				"Team **checkout** · where each rule stands: the statuses `rolekeeper-review`, `rolekeeper-tests` on the latest commit\n",
				"**Rules**\n\n* technical-lead/code-review (Technical lead / Lead engineer: \"Reviews code",
				"* chief-architect/path-review",
				"matches \\*\\*/openapi\\*.yaml, docs/adr/\\*\\* (api/openapi.yaml)\n    * requires 1 approval\n",
				"* backend-engineer/unit-tests (Back-end engineer: \"Writes unit tests to test the behavior of each task built\"): source changes come with a test change\n",
				"    * advisory: no approval required\n",
				"**Reviewers**\n\n* asked Mei Chen: " + leadCheckout + ", fewest open reviews (1); also for technical-lead/path-review\n",
				"**Notes**\n\n* Kofi Mensah is away until 2 Jan 2027\n",
				"\n\n[Why: the full decision](" + url + ")\n",
			},
			once: []string{"a self-approval does not count", "Kofi Mensah is away"},
			// Where things stand changes with every approval and push: it
			// is in the statuses, never in the comment (each edit is a
			// request and a notification).
			notWant: []string{"Not triggered", "<!--", "INPROGRESS", "FAILED", "SUCCESSFUL", "approved by",
				"**waiting**", "**met**", "of 1 required", "no test file"},
		},
		{
			name: "draft without link",
			snap: func() PRSnapshot {
				s := baseSnapshot()
				s.Draft = true
				return s
			},
			want:    []string{"_No reviewers requested: draft pull request: reviewers are requested when it is ready_\n", "Not triggered: `technical-lead/path-review`, `chief-architect/path-review`, `qa-lead/path-review`\n"},
			notWant: []string{"[Why", "**Reviewers**"},
		},
		{
			name: "no team",
			snap: func() PRSnapshot {
				s := baseSnapshot()
				s.Repository = "reloadly/elsewhere"
				return s
			},
			url:  url,
			want: []string{"**rolekeeper**\n\nrepository reloadly/elsewhere is owned by no team in roles.yaml\n\n[Why"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := Comment(Evaluate(org, tc.snap()), tc.url)
			if !strings.HasPrefix(out, "**rolekeeper**\n\n") {
				t.Errorf("comment does not start with the bold marker line:\n%s", out)
			}
			if !strings.HasSuffix(out, "\n") || strings.HasSuffix(out, "\n\n") {
				t.Errorf("comment should end with exactly one newline: %q", out[max(0, len(out)-20):])
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("comment lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("comment holds %q:\n%s", w, out)
				}
			}
			for _, w := range tc.once {
				if n := strings.Count(out, w); n != 1 {
					t.Errorf("comment holds %q %d times:\n%s", w, n, out)
				}
			}
		})
	}
}

func TestMDEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":       "plain text",
		"snake_case.go":    `snake\_case.go`,
		"**/x*.yaml":       `\*\*/x\*.yaml`,
		"[link](x) <b> #1": `\[link\](x) \<b\> \#1`,
		"a`b|c\\d":         "a\\`b\\|c\\\\d",
	} {
		if got := mdEscape(in); got != want {
			t.Errorf("mdEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWhyDropsWhatTheLineAlreadySays: a pick's reason without "asked
// <name>: ", a rule's reason without its label, and anything else whole.
func TestWhyDropsWhatTheLineAlreadySays(t *testing.T) {
	picks := []struct {
		p    Pick
		want string
	}{
		{Pick{Name: "Oluwaseun Adeyemi", Reason: "asked Oluwaseun Adeyemi: Technical lead of team Payments, fewest open reviews (0)"}, "Technical lead of team Payments, fewest open reviews (0)"},
		{Pick{Name: "Mei Chen", Reason: "kept Mei Chen: already a reviewer"}, "already a reviewer"},
		{Pick{Name: "Mei Chen", Reason: "asked Mei Chen"}, "asked"},
		{Pick{Name: "Mei Chen", Reason: "asked Kofi: other"}, "asked Kofi: other"},
		{Pick{Name: "", Reason: "asked : x"}, "asked : x"},
	}
	for _, c := range picks {
		if got := c.p.Why(); got != c.want {
			t.Errorf("%q.Why() = %q, want %q", c.p.Reason, got, c.want)
		}
	}
	rules := []struct {
		r    RuleResult
		want string
	}{
		{RuleResult{RuleID: "technical-lead/code-review", Reason: `technical-lead/code-review (Technical lead: "Reviews code \"): tricky\" written"): every pull request`}, "every pull request"},
		{RuleResult{RuleID: "qa/unit-tests", Reason: "qa/unit-tests: not triggered"}, "not triggered"},
		{RuleResult{RuleID: "qa/unit-tests", Reason: "something else"}, "something else"},
	}
	if got := rules[0].r.RoleTitle(); got != "Technical lead" {
		t.Errorf("RoleTitle() = %q", got)
	}
	if got := (RuleResult{RuleID: "a/b", Role: "a", Reason: "a/b: x"}).RoleTitle(); got != "a" {
		t.Errorf("RoleTitle() without a label = %q", got)
	}
	for _, c := range rules {
		if got := c.r.Why(); got != c.want {
			t.Errorf("%q.Why() = %q, want %q", c.r.Reason, got, c.want)
		}
	}
}
