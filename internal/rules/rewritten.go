package rules

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// TopicStatusOverwritten is the topic of a finding that someone other than
// rolekeeper rewrote one of its commit statuses on an open pull request's
// head (Bitbucket lets anyone who can push write any status, and the same
// key replaces it).
const TopicStatusOverwritten = "status-overwritten"

// Rewrite is a status of rolekeeper's rewritten by someone else, as a
// signed commit-status webhook shows it.
type Rewrite struct {
	Repository string
	Number     int    // pull request
	Team       string // team owning the repository
	Commit     string // full hash
	Key        string // rolekeeper-review, rolekeeper-tests
	State      string // what they set
	Was        string // the state rolekeeper had posted
	By         model.Actor
	At         time.Time // when (zero: now)
	Now        time.Time
}

// RewriteFinding is the finding of a rewritten status: a violation of the
// first rule of the team whose kind rolls up into that status (registry
// order), once per commit, key, state and writer.
func RewriteFinding(org *roles.Org, rw Rewrite) model.Finding {
	var kind roles.Kind
	ruleID := ""
	for _, k := range Registry {
		if k.PR == nil || k.PR.Status != rw.Key {
			continue
		}
		for _, r := range org.Rules {
			if r.Kind == k.Kind && r.AppliesToTeam(rw.Team) {
				kind, ruleID = r.Kind, r.ID
				break
			}
		}
		if ruleID != "" {
			break
		}
	}
	who := cmp.Or(rw.By.DisplayName, rw.By.AccountID, rw.By.UUID, "someone")
	writer := cmp.Or(rw.By.AccountID, rw.By.UUID, "unknown")
	at := cmp.Or(rw.At, rw.Now)
	ref := fmt.Sprintf("%s#%d", rw.Repository, rw.Number)
	return model.Finding{
		Key:     FindingKey(TopicStatusOverwritten, ref+"@"+strings.ToLower(rw.Commit), rw.Key, rw.State, writer),
		Kind:    string(kind),
		RuleID:  ruleID,
		Team:    rw.Team,
		Subject: model.SubjectPullRequest,
		Ref:     ref,
		Reason: fmt.Sprintf("%s set %s to %s on %.12s, which rolekeeper had posted as %s: posted again",
			who, rw.Key, rw.State, rw.Commit, rw.Was),
		OccurredAt: at,
		RecordedAt: rw.Now,
		Actor:      rw.By.AccountID,
	}
}
