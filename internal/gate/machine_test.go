package gate

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

func testPolicy(t *testing.T, env string, authors ...string) Policy {
	t.Helper()
	org := testOrg(t)
	dr, err := rules.DeployPolicy(org, testRepo, env, authors, t0)
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Deploy: dr, Glass: rules.BreakGlassOf(org, dr.Team, env)}
	p.BreakGlass = p.Glass.Holders
	return p
}

func kinds(effs []Effect) []string {
	var out []string
	for _, e := range effs {
		out = append(out, string(e.Kind))
	}
	sort.Strings(out)
	return out
}

func TestApply(t *testing.T) {
	// Ana, a product owner, authored pull request #7: only Bo may approve.
	gated := testPolicy(t, "production", "acc-ana")
	ungated := testPolicy(t, "staging", "acc-ana")
	later := t0.Add(time.Hour)
	expiry := t0.Add(24 * time.Hour)
	waiting := State{Phase: store.GatePending, Environment: "production", CreatedAt: t0, ExpiresAt: expiry, PRs: []int{7}, Notified: true}
	fresh := waiting
	fresh.PRs, fresh.Notified = nil, false
	approved := waiting
	approved.Phase, approved.DecidedBy, approved.DecidedAt = store.GateApproved, "acc-bo", later

	pushed := t0.Add(-2 * time.Hour) // the pull request's last push
	// approval: seen at at, given (as the activity dates it) at at too,
	// after the last push.
	approval := func(who string, pr int, at time.Time) Input {
		return Input{Kind: InApproval, At: at, Account: who, PR: pr, ApprovedAt: at, PushedAt: pushed}
	}
	// stale: an approval given before the last push, seen at at.
	stale := func(who string, at time.Time) Input {
		return Input{Kind: InApproval, At: at, Account: who, PR: 7, ApprovedAt: pushed.Add(-time.Minute), PushedAt: pushed}
	}
	keepOnPush := testPolicy(t, "production", "acc-ana")
	keepOnPush.Deploy.InvalidateOnPush = false
	byCommit, err := rules.DeployPolicyOf(testOrg(t), testRepo, "production", []rules.Authorship{
		{AccountID: "acc-mei", What: "authored pull request #7"},
		{AccountID: "acc-bo", What: "authored commit 1a2b3c4d5e6f of pull request #7"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	pushedByBo := gated
	pushedByBo.Deploy = byCommit
	comment := func(id, who, body string, at time.Time) Input {
		return Input{Kind: InComment, At: at, Account: who, PR: 7, CommentID: id, Text: body}
	}
	tick := func(at time.Time) Input { return Input{Kind: InTick, At: at} }

	tests := []struct {
		name    string
		start   State
		policy  Policy
		inputs  []Input
		phase   string
		by      string
		at      time.Time // zero: not checked
		glass   bool
		effects []string // kinds, sorted, over all inputs
		reason  string   // substring of Reason
		history string   // substring of some history entry's What or Detail
	}{
		{name: "asked, gated, pull request known: waits, shows it, mentions once",
			start:  State{Phase: store.GatePending, Environment: "production", CreatedAt: t0, ExpiresAt: expiry, PRs: []int{7}},
			policy: gated, inputs: []Input{{Kind: InAsked, At: t0}, tick(later)},
			phase: store.GatePending, effects: []string{"mention", "record", "status"}, history: "asked"},
		{name: "asked, environment no rule lists: approved at once and recorded",
			start: fresh, policy: ungated, inputs: []Input{{Kind: InAsked, At: t0}},
			phase: store.GatePending + "→" + store.GateApproved, by: Automatic, at: t0,
			effects: []string{"record", "record", "status"}, reason: "no deploy-approval rule lists"},
		{name: "approval by an eligible person opens it",
			start: waiting, policy: gated, inputs: []Input{approval("acc-bo", 7, later)},
			phase: store.GateApproved, by: "acc-bo", at: later, effects: []string{"record", "status"}, reason: "approved pull request #7"},
		{name: "approval given before the gate counts at once, dated when the gate began",
			start: waiting, policy: gated, inputs: []Input{approval("acc-bo", 7, t0.Add(-time.Hour))},
			phase: store.GateApproved, by: "acc-bo", at: t0, effects: []string{"record", "status"}},
		{name: "the author's approval does not count (separation of duties)",
			start: waiting, policy: gated, inputs: []Input{approval("acc-ana", 7, later), tick(later)},
			phase: store.GatePending, history: "authored"},
		{name: "a technical lead's approval does not count",
			start: waiting, policy: gated, inputs: []Input{approval("acc-mei", 7, later)},
			phase: store.GatePending, history: "approval ignored"},
		{name: "a CTO's approval of the pull request is no break-glass",
			start: waiting, policy: gated, inputs: []Input{approval("acc-raj", 7, later)},
			phase: store.GatePending},
		{name: "approval of a pull request that does not carry the commit",
			start: waiting, policy: gated, inputs: []Input{approval("acc-bo", 8, later)},
			phase: store.GatePending},
		{name: "approval first seen after expiry: expired",
			start: waiting, policy: gated, inputs: []Input{approval("acc-bo", 7, expiry), tick(expiry)},
			phase: store.GateExpired, by: Automatic, at: expiry, effects: []string{"record", "status"}},
		{name: "/approve-deploy by an eligible person, dated by the comment",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "Checked the dashboards.\n/approve-deploy production", later), tick(later.Add(time.Hour))},
			phase: store.GateApproved, by: "acc-bo", at: later, effects: []string{"record", "status"}, reason: "approved by comment"},
		{name: "commands compare environments without case",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/Approve-Deploy PRODUCTION", later)},
			phase: store.GateApproved, by: "acc-bo", effects: []string{"record", "status"}},
		{name: "/approve-deploy by a technical lead: refused, one reply though seen twice",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-mei", "/approve-deploy production", later), comment("c1", "acc-mei", "/approve-deploy production", later)},
			phase: store.GatePending, effects: []string{"reply"}, history: "refused /approve-deploy"},
		{name: "/approve-deploy by the author: refused with a reply",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-ana", "/approve-deploy production", later)},
			phase: store.GatePending, effects: []string{"reply"}, history: "authored"},
		{name: "a command for another environment is not for this gate",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/approve-deploy staging", later)},
			phase: store.GatePending},
		{name: "a command in the middle of a line or quoted is no command",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "I will /approve-deploy production later\n> /approve-deploy production", later)},
			phase: store.GatePending},
		{name: "a command made before the gate was asked for does not count",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/reject-deploy production not this one", t0.Add(-time.Minute))},
			phase: store.GatePending},
		{name: "a command made the instant the gate was asked for does not count",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/reject-deploy production for the gate before", t0)},
			phase: store.GatePending},
		{name: "a command made after expiry does not count",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/approve-deploy production", expiry.Add(time.Minute)), tick(expiry.Add(time.Minute))},
			phase: store.GateExpired, by: Automatic, effects: []string{"record", "status"}},
		{name: "/reject-deploy by an eligible person rejects, with the reason",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/reject-deploy production not on a Friday", later)},
			phase: store.GateRejected, by: "acc-bo", at: later, effects: []string{"record", "status"}, reason: "not on a Friday"},
		{name: "/reject-deploy by a technical lead is refused",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-tom", "/reject-deploy production no", later)},
			phase: store.GatePending, effects: []string{"reply"}},
		{name: "the first decisive command wins",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/reject-deploy production wait", later), comment("c2", "acc-bo", "/approve-deploy production", later.Add(time.Minute))},
			phase: store.GateRejected, by: "acc-bo", effects: []string{"record", "status"}},
		{name: "break-glass comment by the CTO",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-raj", "/break-glass production payments are down", later)},
			phase: store.GateApproved, by: "acc-raj", at: later, glass: true, effects: []string{"finding", "follow-up", "record", "status"}, reason: "payments are down"},
		{name: "break-glass comment without a reason is refused",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-raj", "/break-glass production", later)},
			phase: store.GatePending, effects: []string{"reply"}, history: "needs a reason"},
		{name: "break-glass comment by a product owner is refused",
			start: waiting, policy: gated, inputs: []Input{comment("c1", "acc-bo", "/break-glass production hurry", later)},
			phase: store.GatePending, effects: []string{"reply"}, history: "only a person holding the cto role"},
		{name: "break-glass through the API naming the CTO: the admin token decided, naming them",
			start: waiting, policy: gated, inputs: []Input{{Kind: InBreakGlass, At: later, Account: "acc-raj", Text: " hotfix "}},
			phase: store.GateApproved, by: AdminToken, glass: true, effects: []string{"finding", "follow-up", "record", "status"}, reason: "hotfix",
			history: "break-glass via admin token"},
		{name: "an approval given before the last push does not count (invalidate_on_push)",
			start: waiting, policy: gated, inputs: []Input{stale("acc-bo", later), tick(later)},
			phase: store.GatePending, history: "before the last push to pull request #7"},
		{name: "an approval Bitbucket's activity does not date does not count",
			start: waiting, policy: gated, inputs: []Input{{Kind: InApproval, At: later, Account: "acc-bo", PR: 7, PushedAt: pushed}},
			phase: store.GatePending, history: "no dated approval"},
		{name: "a stale approval, then the same person approves again after the push: opens",
			start: waiting, policy: gated, inputs: []Input{stale("acc-bo", later), approval("acc-bo", 7, later.Add(time.Minute))},
			phase: store.GateApproved, by: "acc-bo", effects: []string{"record", "status"}},
		{name: "invalidate_on_push: false keeps an approval across pushes",
			start: waiting, policy: keepOnPush, inputs: []Input{stale("acc-bo", later)},
			phase: store.GateApproved, by: "acc-bo", effects: []string{"record", "status"}},
		{name: "a product owner who pushed a commit onto the branch cannot approve",
			start: waiting, policy: pushedByBo, inputs: []Input{approval("acc-bo", 7, later), comment("c1", "acc-bo", "/approve-deploy production", later)},
			phase: store.GatePending, effects: []string{"reply"}, history: "authored commit 1a2b3c4d5e6f of pull request #7"},
		{name: "break-glass through the API by someone else changes nothing",
			start: waiting, policy: gated, inputs: []Input{{Kind: InBreakGlass, At: later, Account: "acc-bo", Text: "hotfix"}},
			phase: store.GatePending},
		{name: "break-glass after expiry does not open it",
			start: waiting, policy: gated, inputs: []Input{{Kind: InBreakGlass, At: expiry, Account: "acc-raj", Text: "late"}},
			phase: store.GateExpired, by: Automatic, effects: []string{"record", "status"}},
		{name: "the clock before expiry changes nothing",
			start: waiting, policy: gated, inputs: []Input{tick(expiry.Add(-time.Millisecond))},
			phase: store.GatePending},
		{name: "the clock at expiry expires it",
			start: waiting, policy: gated, inputs: []Input{tick(expiry.Add(time.Hour))},
			phase: store.GateExpired, by: Automatic, at: expiry, effects: []string{"record", "status"}, reason: "expired"},
		{name: "decided stays decided",
			start: approved, policy: gated, inputs: []Input{{Kind: InUnapproval, At: later, Account: "acc-bo", PR: 7},
				comment("c9", "acc-bo", "/reject-deploy production oops", later), tick(expiry.Add(time.Hour))},
			phase: store.GateApproved, by: "acc-bo"},
		{name: "a new commit on the pull request: its approvals no longer count",
			start: waiting, policy: gated, inputs: []Input{{Kind: InCommitMoved, At: later, PR: 7, Text: "pull request #7 moved on"},
				approval("acc-bo", 7, later), comment("c1", "acc-bo", "/approve-deploy production", later),
				{Kind: InPullRequests, At: later, PRs: []int{7}}},
			phase: store.GatePending, history: "pull request dropped"},
		{name: "pull requests found later: approvers mentioned then",
			start: fresh, policy: gated, inputs: []Input{tick(later), {Kind: InPullRequests, At: later, PRs: []int{7, 9}}, tick(later)},
			phase: store.GatePending, effects: []string{"mention", "mention"}, history: "carried by #7, #9"},
		{name: "pull request found with an approval on it: opens, nobody mentioned",
			start: fresh, policy: gated, inputs: []Input{{Kind: InPullRequests, At: later, PRs: []int{7}}, approval("acc-bo", 7, later), tick(later)},
			phase: store.GateApproved, by: "acc-bo", effects: []string{"record", "status"}},
		{name: "an approval withdrawn while waiting is noted",
			start: waiting, policy: gated, inputs: []Input{approval("acc-mei", 7, later), {Kind: InUnapproval, At: later, Account: "acc-mei", PR: 7}},
			phase: store.GatePending, history: "approval withdrawn"},
		{name: "roles.yaml stops gating the environment: approved by rolekeeper",
			start: waiting, policy: ungated, inputs: []Input{tick(later)},
			phase: store.GateApproved, by: Automatic, effects: []string{"record", "status"}},
		{name: "nobody eligible (the only other product owner authored too): only break-glass",
			start: waiting, policy: testPolicy(t, "production", "acc-ana", "acc-bo"),
			inputs: []Input{approval("acc-bo", 7, later), comment("c1", "acc-bo", "/approve-deploy production", later)},
			phase:  store.GatePending, effects: []string{"reply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.start
			before := st.clone()
			var effs []Effect
			for _, in := range tt.inputs {
				var e []Effect
				st, e = Apply(st, in, tt.policy)
				effs = append(effs, e...)
			}
			if !reflect.DeepEqual(tt.start, before) {
				t.Errorf("Apply changed its input state")
			}
			phase := tt.phase
			if i := strings.Index(phase, "→"); i >= 0 {
				phase = phase[i+len("→"):]
			}
			if st.Phase != phase || st.DecidedBy != tt.by || st.BreakGlass != tt.glass {
				t.Errorf("got %s by %q glass=%v; want %s by %q glass=%v (history %+v)", st.Phase, st.DecidedBy, st.BreakGlass, phase, tt.by, tt.glass, st.History)
			}
			if !tt.at.IsZero() && !st.DecidedAt.Equal(tt.at) {
				t.Errorf("decided at %v, want %v", st.DecidedAt, tt.at)
			}
			if got := kinds(effs); !slices.Equal(got, tt.effects) {
				t.Errorf("effects %v, want %v", got, tt.effects)
			}
			if !strings.Contains(st.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", st.Reason, tt.reason)
			}
			if tt.history != "" && !slices.ContainsFunc(st.History, func(e Entry) bool {
				return strings.Contains(e.What, tt.history) || strings.Contains(e.Detail, tt.history)
			}) {
				t.Errorf("history lacks %q: %+v", tt.history, st.History)
			}
			if st.Phase != store.GatePending && st.DecidedAt.IsZero() {
				t.Errorf("decided without a time")
			}
		})
	}
}

// TestApplyReplyNamesWhy checks the reply effect carries the reason a
// person can act on.
func TestApplyReplyNamesWhy(t *testing.T) {
	st := State{Phase: store.GatePending, Environment: "production", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), PRs: []int{7}, Notified: true}
	_, effs := Apply(st, Input{Kind: InComment, At: t0.Add(time.Second), Account: "acc-mei", PR: 7, CommentID: "c1", Text: "/approve-deploy production"}, testPolicy(t, "production", "acc-ana"))
	if len(effs) != 1 || effs[0].Kind != EffReply || effs[0].Account != "acc-mei" || effs[0].PR != 7 || effs[0].CommentID != "c1" ||
		!strings.Contains(effs[0].Text, "changes nothing") || !strings.Contains(effs[0].Text, "product-owner") {
		t.Errorf("effects = %+v", effs)
	}
}

func TestParseCommands(t *testing.T) {
	tests := []struct {
		body string
		want []Command
	}{
		{"LGTM", nil},
		{"/approve-deploy production", []Command{{Kind: CmdApprove, Env: "production"}}},
		{"  /REJECT-DEPLOY Staging broken smoke tests  ", []Command{{Kind: CmdReject, Env: "staging", Reason: "broken smoke tests"}}},
		{"/break-glass production payments down\n/approve-deploy", []Command{{Kind: CmdBreakGlass, Env: "production", Reason: "payments down"}}},
		{"please /approve-deploy production", nil},
		{"> /approve-deploy production", nil},
		{"/approve-deploy\tproduction\r\n/approve-deploy qa", []Command{{Kind: CmdApprove, Env: "production"}, {Kind: CmdApprove, Env: "qa"}}},
	}
	for _, tt := range tests {
		if got := ParseCommands(tt.body); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommands(%q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
}
