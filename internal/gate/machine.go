// Package gate is the deployment approval gate: a pipeline step asks for a
// gate on (repository, commit, environment), and it opens only when a person
// holding the deploy-approval rule's role for the owning team, who authored
// none of the change, approves — by approving the pull request that brought
// the commit, or with an /approve-deploy comment on it — or when a CTO breaks
// the glass with a reason. Every fact is re-read from Bitbucket before it
// counts; the decisions themselves are made by Apply, a pure state machine.
package gate

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Automatic is the DecidedBy of decisions rolekeeper takes itself (an
// environment no rule gates, an expiry).
const Automatic = "rolekeeper"

// AdminToken is the DecidedBy of a break-glass through the API: whoever
// holds ROLEKEEPER_ADMIN_TOKEN acted, naming a holder of the break-glass role.
// Nothing authenticated that person, so no record claims they acted.
const AdminToken = "admin-token"

// Ways a glass was broken (State.Via).
const (
	ViaComment    = "comment"     // a /break-glass comment Bitbucket authenticated
	ViaAdminToken = "admin-token" // POST …/break-glass with the admin token
)

// State is what the machine knows of one gate.
type State struct {
	Phase       string // store.GatePending, GateApproved, GateRejected, GateExpired
	Environment string // lower case
	CreatedAt   time.Time
	ExpiresAt   time.Time
	DecidedBy   string
	DecidedAt   time.Time
	Reason      string
	BreakGlass  bool
	Via         string // break-glass: ViaComment or ViaAdminToken
	Named       string // break-glass via the admin token: the account it names

	PRs      []int    // pull requests that carry the commit: their approvals and comments count
	Dropped  []int    // pull requests that stopped carrying it (a newer commit); never counted again
	Notified bool     // the approvers were mentioned
	Replied  []string // comment ids answered with a refusal (one reply each)
	Seen     []string // approvals seen on PRs, "<pr>:<account>", to notice withdrawals
	History  []Entry
}

// Entry is one thing that happened to a gate: what, who, when and why.
type Entry struct {
	At     time.Time `json:"at"`
	What   string    `json:"what"`
	By     string    `json:"by,omitempty"`
	PR     int       `json:"pr,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// InputKind is what happened.
type InputKind string

// Inputs. The service builds them only from what it has just re-read from
// Bitbucket (or, for InBreakGlass, from an authenticated API call).
const (
	InAsked        InputKind = "asked"         // the gate was created
	InPullRequests InputKind = "pull-requests" // PRs carry the commit
	InApproval     InputKind = "approval"      // Account approves PR
	InUnapproval   InputKind = "unapproval"    // Account's approval of PR is gone
	InComment      InputKind = "comment"       // Account wrote Text on PR (CommentID, At = created_on)
	InCommitMoved  InputKind = "commit-moved"  // PR no longer carries the commit (new commit pushed, declined, deleted); Text says how
	InBreakGlass   InputKind = "break-glass"   // the admin token breaks the glass naming Account; Text is the reason
	InTick         InputKind = "tick"          // the clock; it ends every re-read
)

// Input is one verified fact. At is when it happened (a comment's
// created_on) or, for the others, the time it was observed.
type Input struct {
	Kind      InputKind `json:"kind"`
	At        time.Time `json:"at"`
	Account   string    `json:"account,omitempty"`
	PR        int       `json:"pr,omitempty"`
	PRs       []int     `json:"prs,omitempty"`
	CommentID string    `json:"comment_id,omitempty"`
	Text      string    `json:"text,omitempty"`
	// InApproval: when Bitbucket's activity dates the approval (zero: no
	// dated approval found) and the pull request's last push (zero: none
	// seen). With invalidate_on_push an approval counts only when given
	// after the last push.
	ApprovedAt  time.Time `json:"approved_at,omitzero"`
	PushedAt    time.Time `json:"pushed_at,omitzero"`
	PushUnknown bool      `json:"push_unknown,omitempty"` // the activity does not show when the head was pushed
}

// Policy is who may decide, computed from roles.yaml for the gate's team
// and the authors of its pull requests.
type Policy struct {
	Deploy     rules.DeployResult
	BreakGlass []string // account ids holding the break-glass rule's role
	// Glass is the break-glass rule of roles.yaml covering the gate's
	// environment (Role "" when none does: nobody may break its glass).
	Glass rules.BreakGlass
}

// EffectKind is what the service must do after Apply.
type EffectKind string

// Effects.
const (
	EffStatus   EffectKind = "status"    // post the rolekeeper-deploy-<env> status for the gate's phase
	EffMention  EffectKind = "mention"   // mention the approvers on PR
	EffReply    EffectKind = "reply"     // tell Account why their command on PR (CommentID) changed nothing (Text)
	EffRecord   EffectKind = "record"    // store a decision record; Text says what changed
	EffFinding  EffectKind = "finding"   // record the break-glass finding for the weekly report
	EffFollowUp EffectKind = "follow-up" // open the Jira follow-up of a break-glass
)

// Effect is one thing to carry out.
type Effect struct {
	Kind      EffectKind
	PR        int
	Account   string
	CommentID string
	Text      string
}

// CommandKind is what a comment command asks.
type CommandKind string

// Comment commands.
const (
	CmdApprove    CommandKind = "approve-deploy"
	CmdReject     CommandKind = "reject-deploy"
	CmdBreakGlass CommandKind = "break-glass"
)

// Command is one command line of a comment.
type Command struct {
	Kind   CommandKind
	Env    string
	Reason string
}

// ParseCommands finds the gate commands in a comment: lines that start with
// /approve-deploy ENV, /reject-deploy ENV [REASON] or /break-glass ENV
// REASON. A command in the middle of a line (as in rolekeeper's own
// comments, or a quote) is not one.
func ParseCommands(body string) []Command {
	var out []Command
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var k CommandKind
		switch strings.ToLower(f[0]) {
		case "/approve-deploy":
			k = CmdApprove
		case "/reject-deploy":
			k = CmdReject
		case "/break-glass":
			k = CmdBreakGlass
		default:
			continue
		}
		out = append(out, Command{Kind: k, Env: strings.ToLower(f[1]), Reason: strings.Join(f[2:], " ")})
	}
	return out
}

// Apply feeds one input to the machine and returns the new state and what
// to do. It is pure: s is not modified.
//
// The rules: a pending gate whose environment no rule gates is approved at
// once. Otherwise it opens on an approval of a pull request that carries the
// commit, or an /approve-deploy comment on one, by a person
// rules.CanApproveDeploy accepts; it is rejected by a /reject-deploy from
// such a person; a holder of the break-glass role opens it with a reason
// (/break-glass or the API). Comments count only when made while the gate
// waited (a /reject-deploy for an earlier gate does not close a new one);
// approvals count when they are present, including those given before the
// gate was asked for. A command that does not count is answered once. At
// ExpiresAt a pending gate expires. A decided gate stays decided: an
// approval withdrawn after the gate opened does not close it again.
func Apply(s State, in Input, p Policy) (State, []Effect) {
	s = s.clone()
	var eff []Effect
	if s.Phase != store.GatePending {
		return s, nil
	}
	decide := func(phase, by string, at time.Time, reason string, glass bool, pr int) {
		s.Phase, s.DecidedBy, s.DecidedAt, s.Reason, s.BreakGlass = phase, by, at, reason, glass
		what := phase
		if glass {
			what = "break-glass"
			if s.Via == ViaAdminToken {
				what = "break-glass via admin token"
			}
		}
		s.History = append(s.History, Entry{At: at, What: what, By: by, PR: pr, Detail: reason})
		eff = append(eff, Effect{Kind: EffStatus}, Effect{Kind: EffRecord, Text: phase})
		if glass {
			eff = append(eff, Effect{Kind: EffFinding}, Effect{Kind: EffFollowUp})
		}
	}
	counts := func(pr int) bool { return slices.Contains(s.PRs, pr) }
	// A command counts when made after the gate was asked for and before it
	// expires: a /reject-deploy for the gate before must not close this one.
	inWindow := func(t time.Time) bool { return t.After(s.CreatedAt) && t.Before(s.ExpiresAt) }

	switch in.Kind {
	case InAsked:
		s.History = append(s.History, Entry{At: in.At, What: "asked", Detail: orDefault(in.Text, p.Deploy.Reason)})
		eff = append(eff, Effect{Kind: EffRecord, Text: "asked"})
		if p.Deploy.Gated {
			eff = append(eff, Effect{Kind: EffStatus})
		}
	case InPullRequests:
		var added []int
		for _, pr := range in.PRs {
			if !counts(pr) && !slices.Contains(s.Dropped, pr) {
				s.PRs = append(s.PRs, pr)
				added = append(added, pr)
			}
		}
		if len(added) > 0 {
			s.History = append(s.History, Entry{At: in.At, What: "pull requests", Detail: "carried by " + prList(added)})
		}
	case InCommitMoved:
		if counts(in.PR) {
			s.PRs = slices.DeleteFunc(s.PRs, func(n int) bool { return n == in.PR })
			s.Dropped = append(s.Dropped, in.PR)
			prefix := strconv.Itoa(in.PR) + ":"
			s.Seen = slices.DeleteFunc(s.Seen, func(k string) bool { return strings.HasPrefix(k, prefix) })
			s.History = append(s.History, Entry{At: in.At, What: "pull request dropped", PR: in.PR,
				Detail: orDefault(in.Text, "it no longer carries the commit") + ": its approvals and comments no longer count"})
		}
	case InApproval:
		if !counts(in.PR) || in.Account == "" {
			break
		}
		ok, why := rules.CanApproveDeploy(p.Deploy, in.Account)
		if ok && p.Deploy.Gated {
			if stale := staleApproval(in, p); stale != "" {
				ok, why = false, stale
			}
		}
		key := strconv.Itoa(in.PR) + ":" + in.Account
		if !slices.Contains(s.Seen, key) {
			s.Seen = append(s.Seen, key)
			if !ok {
				s.History = append(s.History, Entry{At: in.At, What: "approval ignored", By: in.Account, PR: in.PR, Detail: why})
			}
		}
		if ok && in.At.Before(s.ExpiresAt) {
			at := in.At
			if at.Before(s.CreatedAt) {
				at = s.CreatedAt
			}
			decide(store.GateApproved, in.Account, at, "approved pull request #"+strconv.Itoa(in.PR)+": "+why, false, in.PR)
		}
	case InUnapproval:
		key := strconv.Itoa(in.PR) + ":" + in.Account
		if slices.Contains(s.Seen, key) {
			s.Seen = slices.DeleteFunc(s.Seen, func(k string) bool { return k == key })
			s.History = append(s.History, Entry{At: in.At, What: "approval withdrawn", By: in.Account, PR: in.PR})
		}
	case InComment:
		if !counts(in.PR) || !inWindow(in.At) || (in.CommentID != "" && slices.Contains(s.Replied, in.CommentID)) {
			break
		}
		for _, c := range ParseCommands(in.Text) {
			if c.Env != s.Environment || s.Phase != store.GatePending {
				continue
			}
			if why := refusal(c, in.Account, p); why != "" {
				if in.CommentID != "" {
					s.Replied = append(s.Replied, in.CommentID)
				}
				s.History = append(s.History, Entry{At: in.At, What: "refused /" + string(c.Kind), By: in.Account, PR: in.PR, Detail: why})
				eff = append(eff, Effect{Kind: EffReply, PR: in.PR, Account: in.Account, CommentID: in.CommentID,
					Text: "`/" + string(c.Kind) + " " + c.Env + "` changes nothing: " + why})
				break
			}
			switch c.Kind {
			case CmdApprove:
				_, why := rules.CanApproveDeploy(p.Deploy, in.Account)
				decide(store.GateApproved, in.Account, in.At, "approved by comment on pull request #"+strconv.Itoa(in.PR)+": "+why, false, in.PR)
			case CmdReject:
				decide(store.GateRejected, in.Account, in.At, orDefault(c.Reason, "rejected without a reason"), false, in.PR)
			case CmdBreakGlass:
				s.Via = ViaComment
				decide(store.GateApproved, in.Account, in.At, c.Reason, true, in.PR)
			}
		}
	case InBreakGlass:
		// The admin token acted; the account is only named. The reason says
		// so, as the status, the report and the follow-up show it.
		if in.At.Before(s.ExpiresAt) && refusal(Command{Kind: CmdBreakGlass, Env: s.Environment, Reason: in.Text}, in.Account, p) == "" {
			s.Via, s.Named = ViaAdminToken, in.Account
			decide(store.GateApproved, AdminToken, in.At, strings.TrimSpace(in.Text), true, 0)
		}
	case InTick:
	}

	// Whatever the input: an environment no rule gates (any longer) is
	// approved at once; a gate past its time expires. At the clock's tick,
	// which ends every re-read, a gate still waiting whose pull requests are
	// known mentions its approvers, once.
	if s.Phase == store.GatePending && !p.Deploy.Gated {
		decide(store.GateApproved, Automatic, in.At, orDefault(p.Deploy.Reason, "environment "+s.Environment+" is not gated"), false, 0)
	}
	if s.Phase == store.GatePending && !in.At.Before(s.ExpiresAt) {
		decide(store.GateExpired, Automatic, s.ExpiresAt,
			"no eligible approval before the gate expired at "+s.ExpiresAt.UTC().Format(time.RFC3339), false, 0)
	}
	if in.Kind == InTick && s.Phase == store.GatePending && !s.Notified && len(s.PRs) > 0 {
		s.Notified = true
		for _, pr := range s.PRs {
			eff = append(eff, Effect{Kind: EffMention, PR: pr})
		}
	}
	return s, eff
}

// staleApproval says why an approval does not count for the commit ("" when
// it does): with invalidate_on_push it must be given after the pull
// request's last push, as Bitbucket's activity dates them (commit dates are
// the author's to choose and never count).
func staleApproval(in Input, p Policy) string {
	if !p.Deploy.InvalidateOnPush {
		return ""
	}
	if in.ApprovedAt.IsZero() {
		return "Bitbucket's activity shows no dated approval; approve again"
	}
	if in.PushUnknown {
		return "Bitbucket's activity does not show when pull request #" + strconv.Itoa(in.PR) + "'s head was pushed, so no approval can be dated after it"
	}
	if !in.PushedAt.IsZero() && !in.ApprovedAt.After(in.PushedAt) {
		return "the approval at " + in.ApprovedAt.UTC().Format(time.RFC3339) + " was given before the last push to pull request #" +
			strconv.Itoa(in.PR) + " at " + in.PushedAt.UTC().Format(time.RFC3339) + " (invalidate_on_push): approve again"
	}
	return ""
}

// refusal says why a command by account does not count ("" when it does).
func refusal(c Command, account string, p Policy) string {
	if c.Kind == CmdBreakGlass {
		if account == "" || !slices.Contains(p.BreakGlass, account) {
			if p.Glass.Role == "" {
				return "no break-glass rule in roles.yaml covers this environment, so nobody may break its glass"
			}
			return "only a person holding the " + p.Glass.Role + " role may break the glass"
		}
		if strings.TrimSpace(c.Reason) == "" {
			return "a break-glass needs a reason: /break-glass " + c.Env + " <reason>"
		}
		return ""
	}
	if ok, why := rules.CanApproveDeploy(p.Deploy, account); !ok {
		return why
	}
	return ""
}

func (s State) clone() State {
	s.PRs = slices.Clone(s.PRs)
	s.Dropped = slices.Clone(s.Dropped)
	s.Replied = slices.Clone(s.Replied)
	s.Seen = slices.Clone(s.Seen)
	s.History = slices.Clone(s.History)
	return s
}

func orDefault(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

func prList(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = "#" + strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}
