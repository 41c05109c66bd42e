package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
	// Authors are the account ids that authored the changes deployed.
	Authors []string `json:"authors,omitempty"`

	Notes  []string `json:"notes,omitempty"`
	Reason string   `json:"reason"`
}

// DeployPolicy applies the deploy-approval rules to a deployment of repo to
// environment, whose changes were authored by the given account ids. A
// repository no team owns is an error wrapping ErrUnknownRepository; an
// environment no deploy-approval rule of the team lists is not gated.
// When several rules list the environment, the first in file order decides.
func DeployPolicy(org *roles.Org, repo, environment string, authors []string, now time.Time) (DeployResult, error) {
	var team *roles.Team
	if org != nil {
		team = org.TeamForRepo(repo)
	}
	if team == nil {
		return DeployResult{}, fmt.Errorf("repository %s: %w", repo, ErrUnknownRepository)
	}
	res := DeployResult{Team: team.ID, Environment: environment, Authors: append([]string(nil), authors...)}

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
	res.RuleID, res.Role, res.Responsibility = rule.ID, rule.Role, rule.Responsibility
	why := roleWhy(org.Role(rule.Role), rule.Role, "team "+teamName(team))

	for _, p := range org.Holders(rule.Role, team.ID) {
		name := p.DisplayName()
		switch {
		case p.AccountID == "":
			m := name + " has no account_id in roles.yaml"
			res.Refused = append(res.Refused, Pick{Person: p.ID, Name: name, Reason: m})
			res.Notes = append(res.Notes, m)
		case containsString(authors, p.AccountID):
			m := name + " authored a pull request that brought this commit"
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
	if containsString(res.Authors, accountID) {
		return false, fmt.Sprintf("account %s authored a pull request that brought this commit and does not hold %s for team %s", accountID, res.Role, res.Team)
	}
	return false, fmt.Sprintf("account %s does not hold %s for team %s (%s)", accountID, res.Role, res.Team, res.RuleID)
}
