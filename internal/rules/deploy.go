package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/glob"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// ErrUnknownRepository is returned (wrapped) when no team owns a repository.
var ErrUnknownRepository = errors.New("repository is owned by no team in roles.yaml")

// DeployResult is the deploy-approval policy for one deployment: who may
// approve it and why.
type DeployResult struct {
	Gated          bool   `json:"gated"`
	Team           string `json:"team"`
	Environment    string `json:"environment"`
	RuleID         string `json:"rule_id,omitempty"`
	Role           string `json:"role,omitempty"`
	Responsibility string `json:"responsibility,omitempty"`

	// Eligible are the holders of the role for the team who authored none
	// of the changes. Away people stay eligible (a note says they are away).
	Eligible []Pick `json:"eligible,omitempty"`
	// Excluded says, for each author holding the role, why their approval
	// does not count.
	Excluded []string `json:"excluded,omitempty"`
	// Refused are the holders whose approval does not count (authors, people
	// without an account id), with the reason; Excluded is their reasons.
	Refused []Pick `json:"refused,omitempty"`
	// Authors are the account ids that authored the changes deployed: the
	// authors of the pull requests and of every commit on them.
	Authors []string `json:"authors,omitempty"`
	// Authorship says, for each author, what they authored (the first
	// reason found for each account).
	Authorship []Authorship `json:"authorship,omitempty"`
	// InvalidateOnPush: an approval counts only when given after the last
	// push to the pull request (the rule's invalidate_on_push).
	InvalidateOnPush bool `json:"invalidate_on_push"`
	// Branches are the rule's branches: globs of the destinations through
	// which a pull request's approval counts (none: the repository's main
	// branch; ApprovalBranchWhy).
	Branches []string `json:"branches,omitempty"`

	Notes  []string `json:"notes,omitempty"`
	Reason string   `json:"reason"`
}

// ApprovalBranchWhy says why an approval on pull request #number, into
// branch dest, cannot count for the deployment ("" when it can): only pull
// requests into the rule's branches count, or, when the rule names none,
// into main, the repository's main branch. An approval is of a diff against
// the destination: a pull request into a branch nobody reviews can show a
// small diff over unreviewed content.
func (r DeployResult) ApprovalBranchWhy(number int, dest, main string) string {
	target := orDefault(dest, "no branch")
	if len(r.Branches) == 0 {
		if dest != "" && dest == main {
			return ""
		}
		return fmt.Sprintf("pull request #%d targets %s, not %s, the main branch (the deploy-approval rule's branches)", number, target, main)
	}
	for _, b := range r.Branches {
		if g, err := glob.Compile(b); err == nil && dest != "" && g.Match(dest) {
			return ""
		}
	}
	return fmt.Sprintf("pull request #%d targets %s, none of the deploy-approval rule's branches (%s)", number, target, strings.Join(r.Branches, ", "))
}

// Authorship is one account that authored part of a deployed change, and
// what it authored ("authored pull request #12", "authored commit
// 1a2b3c4d5e6f of pull request #12"), as read from Bitbucket.
type Authorship struct {
	AccountID string `json:"account_id"`
	What      string `json:"what"`
}

// DeployPolicy applies the deploy-approval rules to a deployment of repo to
// environment, whose changes were authored by the given account ids. A
// repository no team owns is an error wrapping ErrUnknownRepository; an
// environment no deploy-approval rule of the team lists is not gated.
// When several rules list the environment, the first in file order decides.
func DeployPolicy(org *roles.Org, repo, environment string, authors []string, now time.Time) (DeployResult, error) {
	var as []Authorship
	for _, a := range authors {
		as = append(as, Authorship{AccountID: a, What: "authored a pull request that brought this commit"})
	}
	return DeployPolicyOf(org, repo, environment, as, now)
}

// DeployPolicyOf is DeployPolicy with what each author authored, so that
// an exclusion says why (separation of duties covers the authors of the
// pull requests and of every commit on them).
func DeployPolicyOf(org *roles.Org, repo, environment string, authorship []Authorship, now time.Time) (DeployResult, error) {
	var team *roles.Team
	if org != nil {
		team = org.TeamForRepo(repo)
	}
	if team == nil {
		return DeployResult{}, fmt.Errorf("repository %s: %w", repo, ErrUnknownRepository)
	}
	res := DeployResult{Team: team.ID, Environment: environment}
	what := map[string]string{}
	for _, a := range authorship {
		if a.AccountID == "" || what[a.AccountID] != "" {
			continue
		}
		what[a.AccountID] = orDefault(a.What, "authored a pull request that brought this commit")
		res.Authors = append(res.Authors, a.AccountID)
		res.Authorship = append(res.Authorship, Authorship{AccountID: a.AccountID, What: what[a.AccountID]})
	}
	authors := res.Authors

	var rule *roles.Rule
	for _, r := range org.RulesOfKind(roles.KindDeployApproval) {
		if !r.AppliesToTeam(team.ID) || !listsEnvironment(r, environment) {
			continue
		}
		if rule == nil {
			rule = r
		} else {
			res.Notes = append(res.Notes, fmt.Sprintf("rule %s also lists %s: the first rule, %s, decides", r.ID, environment, rule.ID))
		}
	}
	if rule == nil {
		res.Reason = fmt.Sprintf("no deploy-approval rule lists environment %s: approved at once", environment)
		return res, nil
	}
	res.Gated = true
	res.RuleID, res.Role, res.Responsibility, res.InvalidateOnPush = rule.ID, rule.Role, rule.Responsibility, rule.InvalidateOnPush
	res.Branches = rule.Branches
	why := roleWhy(org.Role(rule.Role), rule.Role, "team "+teamName(team))

	for _, p := range org.Holders(rule.Role, team.ID) {
		name := p.DisplayName()
		switch {
		case p.AccountID == "":
			m := name + " has no account_id in roles.yaml"
			res.Refused = append(res.Refused, Pick{Person: p.ID, Name: name, Reason: m})
			res.Notes = append(res.Notes, m)
		case containsString(authors, p.AccountID):
			m := name + " " + what[p.AccountID]
			res.Refused = append(res.Refused, Pick{AccountID: p.AccountID, Person: p.ID, Name: name, Reason: m})
			res.Excluded = append(res.Excluded, m)
		default:
			res.Eligible = append(res.Eligible, Pick{AccountID: p.AccountID, Person: p.ID, Name: name,
				Reason: name + " may approve: " + why + ", authored none of the changes"})
			if away, until := p.AwayAt(now); away {
				res.Notes = append(res.Notes, fmt.Sprintf("%s is away until %s (their approval still counts)", name, FormatDay(until, now)))
			}
		}
	}
	res.Reason = fmt.Sprintf("%s: deployments of team %s to %s need an approval from %s who did not author the change",
		ruleLabel(org, rule), teamName(team), environment, why)
	if len(res.Eligible) == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("nobody can approve: no %s who did not author the change; only a break-glass override can release it", why))
	}
	return res, nil
}

// GatePolicy is the deploy-approval policy of an existing gate now: as
// DeployPolicyOf decides, or, when no team owns the repository any more
// (roles.yaml changed since the gate opened), still gated under the rule
// and team it was opened with, with nobody eligible: only a break-glass
// opens it.
func GatePolicy(org *roles.Org, repo, environment, team, ruleID string, authorship []Authorship, now time.Time) DeployResult {
	dr, err := DeployPolicyOf(org, repo, environment, authorship, now)
	if err == nil {
		return dr
	}
	dr = DeployResult{Gated: true, Environment: environment, Team: team, RuleID: ruleID, Authorship: authorship,
		InvalidateOnPush: true, Reason: err.Error() + ": nobody can approve; only a break-glass opens it"}
	for _, a := range authorship {
		dr.Authors = append(dr.Authors, a.AccountID)
	}
	return dr
}

func listsEnvironment(r *roles.Rule, env string) bool {
	for _, e := range r.Environments {
		if strings.EqualFold(e, env) {
			return true
		}
	}
	return false
}

// Environments returns the environments gated for the team by a
// deploy-approval rule, in file order, each once.
func Environments(org *roles.Org, team string) []string {
	if org == nil {
		return nil
	}
	var out []string
	for _, r := range org.RulesOfKind(roles.KindDeployApproval) {
		if !r.AppliesToTeam(team) {
			continue
		}
		for _, e := range r.Environments {
			if !containsString(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// CanApproveDeploy reports whether the account's approval counts for the
// deployment, and the reason either way.
func CanApproveDeploy(res DeployResult, accountID string) (bool, string) {
	if !res.Gated {
		return true, orDefault(res.Reason, "environment "+res.Environment+" is not gated")
	}
	if accountID == "" {
		return false, "an approval without an account id does not count"
	}
	for _, p := range res.Eligible {
		if p.AccountID == accountID {
			return true, p.Reason
		}
	}
	for _, p := range res.Refused {
		if p.AccountID == accountID {
			return false, p.Reason
		}
	}
	for _, a := range res.Authorship {
		if a.AccountID == accountID {
			return false, fmt.Sprintf("account %s %s and does not hold %s for team %s", accountID, a.What, res.Role, res.Team)
		}
	}
	if containsString(res.Authors, accountID) {
		return false, fmt.Sprintf("account %s authored a pull request that brought this commit and does not hold %s for team %s", accountID, res.Role, res.Team)
	}
	return false, fmt.Sprintf("account %s does not hold %s for team %s (%s)", accountID, res.Role, res.Team, res.RuleID)
}

// maxStatusKey is the longest commit status key Bitbucket accepts.
const maxStatusKey = 40

// DeployStatusKey is the commit status key of a deployment environment:
// rolekeeper-deploy-<environment>, lower case. Bitbucket refuses keys over
// 40 characters, so an environment over 22 characters gets a stable
// shortened key: its first 13 characters, "-" and 8 hex characters of the
// SHA-256 of the whole (lower-case) name, 40 characters in all.
func DeployStatusKey(environment string) string {
	env := strings.ToLower(environment)
	key := StatusDeployPrefix + env
	if len(key) <= maxStatusKey {
		return key
	}
	sum := sha256.Sum256([]byte(env))
	tail := "-" + hex.EncodeToString(sum[:4])
	return key[:maxStatusKey-len(tail)] + tail
}

// deployApprovalKind: deployments to the rule's environments wait at a
// gate for an approval of the role (internal/gate carries it out); the
// audit judges every deployment that ran on whether a gate opened it.
var deployApprovalKind = KindInfo{
	People: true,
	Kind:   roles.KindDeployApproval,
	Doc:    "deployments to environments wait for an approval of the role",
	Action: "Review the deployment that went out without approval.",
	Spec: &roles.KindSpec{
		Kind:     roles.KindDeployApproval,
		Settings: []string{"environments", "branches", "invalidate_on_push"},
		Apply: func(s *roles.Settings, r *roles.Rule) {
			if s.Required("environments", "a list of deployment environments, like [production]") {
				r.Environments = s.List("environments", nil, false, "environment", "like [production]")
			}
			r.Branches = s.Globs("branches", nil)
			// An approval belongs to the commit it saw.
			r.InvalidateOnPush = s.Bool("invalidate_on_push", true)
		},
		TeamHolders: true,
	},
}

// DeployRule returns the deploy-approval rule deciding a team's
// environment: the first in file order that lists it (nil: not gated).
func DeployRule(org *roles.Org, team, environment string) *roles.Rule {
	if org == nil {
		return nil
	}
	for _, r := range org.RulesOfKind(roles.KindDeployApproval) {
		if r.AppliesToTeam(team) && listsEnvironment(r, environment) {
			return r
		}
	}
	return nil
}

// Gated reports whether a deploy-approval rule applies to the team.
func Gated(org *roles.Org, team string) bool { return len(Environments(org, team)) > 0 }

// Deployed reports whether a deployment actually ran (not merely queued,
// or stopped before it started): only those are judged.
func Deployed(d model.Deployment) bool {
	switch strings.ToUpper(d.State) {
	case "COMPLETED", "IN_PROGRESS", "":
		return !strings.EqualFold(d.Status, "STOPPED")
	}
	return false
}

// OpenedBy is the gate that let a deployment out: approved, or opened by
// break-glass.
type OpenedBy struct {
	Gate       string // gate id
	By         string // account id of who approved or broke the glass
	BreakGlass bool
}

// DeployFinding judges a deployment of repo that ran to an environment
// rule gates: held when a gate opened it (opened non-nil), violated
// otherwise. Keyed by repository and deployment.
func DeployFinding(org *roles.Org, team string, rule *roles.Rule, repo string, d model.Deployment, opened *OpenedBy) model.Finding {
	f := model.Finding{
		Key: FindingKey(TopicDeploy, repo, d.UUID), Kind: string(roles.KindDeployApproval), RuleID: rule.ID, Team: team,
		Subject: model.SubjectDeployment, Ref: repo + "@" + shortCommit(d.Commit) + " → " + d.Environment, URL: d.URL,
		OccurredAt: d.At,
	}
	if opened != nil {
		f.Held = true
		by := ActorName(org, model.Actor{AccountID: opened.By})
		if opened.By == "" {
			by = ""
		}
		how := "approved by " + by
		if opened.BreakGlass {
			how = "opened by break-glass (" + by + ")"
		}
		f.Reason = fmt.Sprintf("deployment to %s went through gate %s, %s", d.Environment, opened.Gate, how)
		f.Actor = opened.By
		return f
	}
	f.Reason = fmt.Sprintf("deployment of %s to %s had no approved gate: %s (%s: %q) needs an approval from %s who did not author the change",
		shortCommit(d.Commit), d.Environment, rule.ID, rule.Role, rule.Responsibility, rule.Role)
	return f
}
