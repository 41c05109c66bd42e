package demo

import (
	"fmt"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// sandbox is the built-in Bitbucket Cloud and Jira Cloud: the fakes the
// tests use, on 127.0.0.1, filled with the organisation of the shipped
// roles.yaml. They demand the generated credentials, so the daemon is not in
// dry-run: what it writes lands here and can be looked at.
type sandbox struct {
	bb   *bitbuckettest.Server
	jira *jiratest.Server
	org  *roles.Org

	bbUser, bbToken    string
	jiraEmail, jiraTok string
	actors             map[string]model.Actor // by handle
}

// newSandbox starts both fakes on the demo's clock and fills them.
func newSandbox(org *roles.Org, now func() time.Time) *sandbox {
	s := &sandbox{
		org:       org,
		bbUser:    "rolekeeper-demo@reloadly.example",
		bbToken:   "ATBB" + randomHex(16),
		jiraEmail: "rolekeeper-demo@reloadly.example",
		jiraTok:   "ATATT" + randomHex(16),
		actors:    map[string]model.Actor{},
	}
	s.bb = bitbuckettest.New()
	s.bb.SetClock(now)
	s.bb.RequireAuth(s.bbUser, s.bbToken)
	s.jira = jiratest.Start(jiratest.Options{Now: now})

	for _, p := range org.People {
		a := s.bb.AddUser(model.Actor{AccountID: p.AccountID, DisplayName: p.DisplayName(), Nickname: p.ID})
		s.actors[p.ID] = a
		s.jira.AddUser(p.AccountID, p.DisplayName())
	}
	for _, t := range org.Teams {
		for _, repo := range t.Repositories {
			s.bb.AddRepository(repo)
		}
		for _, key := range t.JiraProjects {
			s.jira.AddProject(key, t.Name)
		}
	}
	return s
}

func (s *sandbox) close() {
	s.bb.Close()
	s.jira.Close()
}

// actor is a person of roles.yaml as Bitbucket knows them.
func (s *sandbox) actor(handle string) model.Actor { return s.actors[handle] }

// name is a person's display name by handle or account id.
func (s *sandbox) name(idOrAccount string) string {
	if p := s.org.Person(idOrAccount); p != nil {
		return p.DisplayName()
	}
	if p := s.org.PersonByAccount(idOrAccount); p != nil {
		return p.DisplayName()
	}
	return idOrAccount
}

// cast is who the sample week needs from roles.yaml, and as what. The
// demo checks them before it starts, so that an edited roles.yaml gives a
// clear message instead of a confusing replay.
var cast = []struct {
	handle, role, team string
}{
	{"diego", "back-end-engineer", "checkout"},
	{"mei", "technical-lead", "checkout"},
	{"tomasz", "technical-lead", "checkout"},
	{"nadia", "product-owner", "checkout"},
	{"ravi", "back-end-engineer", "payments"},
	{"ravi", "back-end-engineer", "platform"},
	{"hana", "front-end-engineer", "platform"},
	{"amara", "technical-lead", "payments"},
	{"kofi", "technical-lead", "payments"},
	{"lucia", "product-owner", "payments"},
	{"olu", "technical-lead", "platform"},
	{"ingrid", "technical-lead", "platform"},
	{"camila", "qa-lead", ""},
	{"priya", "chief-architect", ""},
}

// checkCast reports what the sample week needs and roles.yaml lacks.
func checkCast(org *roles.Org, week time.Time) error {
	for _, c := range cast {
		p := org.Person(c.handle)
		switch {
		case p == nil:
			return fmt.Errorf("the sample week needs person %q in roles.yaml", c.handle)
		case p.AccountID == "":
			return fmt.Errorf("the sample week needs an account_id for %q in roles.yaml", c.handle)
		case !p.HasRole(c.role):
			return fmt.Errorf("the sample week needs %q to hold role %s in roles.yaml", c.handle, c.role)
		case c.team != "" && !p.InTeam(c.team):
			return fmt.Errorf("the sample week needs %q in team %s in roles.yaml", c.handle, c.team)
		}
	}
	for repo, team := range map[string]string{
		repoCheckout: "checkout", repoPayments: "payments", repoInfra: "platform", repoPortal: "platform",
	} {
		if t := org.TeamForRepo(repo); t == nil || t.ID != team {
			return fmt.Errorf("the sample week needs repository %s owned by team %s in roles.yaml", repo, team)
		}
	}
	for key, team := range map[string]string{projectPayments: "payments", projectCheckout: "checkout"} {
		if t := org.TeamForProject(key); t == nil || t.ID != team {
			return fmt.Errorf("the sample week needs Jira project %s owned by team %s in roles.yaml", key, team)
		}
	}
	if away, _ := org.Person("kofi").AwayAt(week); !away {
		return fmt.Errorf("the sample week (%s) needs kofi away in roles.yaml", week.Format("2 Jan 2006"))
	}
	return nil
}
