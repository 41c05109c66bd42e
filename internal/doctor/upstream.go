package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// outcome is what an upstream call's error means to an operator.
type outcome struct {
	status int    // HTTP status; 0 when there was no answer
	words  string // "token rejected (401): …", "cannot reach …: …"
}

// describe turns a Bitbucket or Jira client error into words. host names
// the server for network errors.
func describe(err error, host string) outcome {
	status, detail := 0, err.Error()
	var ue *upstream.Error
	switch {
	case errors.As(err, &ue):
		status, detail = ue.StatusCode, ue.Message
		if status == 0 && ue.Err != nil {
			detail = ue.Err.Error()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return outcome{0, fmt.Sprintf("no answer from %s in time", host)}
	}
	with := func(s string) string {
		if detail == "" || detail == http.StatusText(status) {
			return s
		}
		return s + ": " + detail
	}
	switch {
	case status == 0:
		return outcome{0, fmt.Sprintf("cannot reach %s: %s", host, detail)}
	case status == http.StatusUnauthorized:
		return outcome{status, with("token rejected (401)")}
	case status == http.StatusForbidden:
		return outcome{status, with("forbidden (403)")}
	case status == http.StatusNotFound:
		return outcome{status, with("not found (404)")}
	case status == http.StatusTooManyRequests:
		return outcome{status, "rate limited (429): run doctor again in a few minutes"}
	case status >= 500:
		return outcome{status, with(fmt.Sprintf("server error (%d): the service may be having an outage", status))}
	}
	return outcome{status, with(fmt.Sprintf("answered %d", status))}
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// checkBitbucket checks the credentials (GET /user) and that every
// repository roles.yaml names is readable (one page of its pull requests).
func (d *doctor) checkBitbucket(ctx context.Context) {
	s := d.secrets
	basic := s.BitbucketUsername != "" || s.BitbucketToken != ""
	switch {
	case s.BitbucketAccessToken != "" && basic:
		d.r.add(Fail, checkBitbucket, "both %s and %s/%s are set: rolekeeper refuses to start; keep one way to authenticate",
			config.EnvBitbucketAccessToken, config.EnvBitbucketUsername, config.EnvBitbucketToken)
		return
	case s.BitbucketUsername != "" && s.BitbucketToken == "":
		d.r.add(Fail, checkBitbucket, "%s is set but %s is not: set both (the Atlassian account email and an API token) or neither",
			config.EnvBitbucketUsername, config.EnvBitbucketToken)
		return
	case s.BitbucketUsername == "" && s.BitbucketToken != "":
		d.r.add(Fail, checkBitbucket, "%s is set but %s is not: Basic auth needs the Atlassian account email as the username",
			config.EnvBitbucketToken, config.EnvBitbucketUsername)
		return
	}
	host := hostOf(d.cfg.Bitbucket.BaseURL)
	c, err := bitbucket.New(bitbucket.Options{
		BaseURL:     d.cfg.Bitbucket.BaseURL,
		Username:    s.BitbucketUsername,
		Token:       s.BitbucketToken,
		AccessToken: s.BitbucketAccessToken,
		HTTPClient:  d.opts.HTTPClient,
		Timeout:     d.cfg.Bitbucket.Timeout,
		MaxRetries:  -1, // report at once; the daemon retries, the doctor says
		MaxPages:    1,
	})
	if err != nil {
		d.r.add(Fail, checkBitbucket, "%v: fix bitbucket.base_url", err)
		return
	}

	anonymous := !s.HasBitbucketAPI()
	if anonymous {
		d.r.add(Warn, checkBitbucket, "no credentials (%s and %s, or %s): rolekeeper reads %s anonymously and changes nothing there",
			config.EnvBitbucketUsername, config.EnvBitbucketToken, config.EnvBitbucketAccessToken, host)
	} else {
		cctx, cancel := d.bounded(ctx)
		me, err := c.CurrentUser(cctx)
		cancel()
		if err != nil {
			o := describe(err, host)
			switch o.status {
			case http.StatusForbidden:
				// The token may lack read:account only; the repositories
				// tell whether it can do its job.
				d.r.add(Warn, checkBitbucket, "cannot read the token's account: %s. Add the read:account scope to see who it acts as; the repositories are checked below", o.words)
			case http.StatusUnauthorized:
				d.r.add(Fail, checkBitbucket, "%s. %s", o.words, bitbucketAuthHint(s))
				return
			default:
				d.r.add(Fail, checkBitbucket, "%s (GET /user). Check bitbucket.base_url (%s) and that this host can reach it (proxy, egress policy)", o.words, d.cfg.Bitbucket.BaseURL)
				return
			}
		} else {
			how := "an API token"
			if s.BitbucketAccessToken != "" {
				how = "an access token"
			}
			d.r.add(OK, checkBitbucket, "authenticated with %s as %s (account id %s)", how, me.DisplayName, me.AccountID)
		}
	}
	d.checkRepositories(ctx, c, host, anonymous)
}

func bitbucketAuthHint(s config.Secrets) string {
	if s.BitbucketAccessToken != "" {
		return "Check " + config.EnvBitbucketAccessToken + ": the access token may be revoked or expired; create a new one (Repository or Workspace settings → Access tokens)"
	}
	return "Check " + config.EnvBitbucketUsername + " (the Atlassian account email, not the Bitbucket username) and " +
		config.EnvBitbucketToken + " (an API token with scopes; app passwords no longer work)"
}

func (d *doctor) checkRepositories(ctx context.Context, c *bitbucket.Client, host string, anonymous bool) {
	if d.org == nil {
		d.r.add(Warn, checkRepository, "not checked: roles.yaml did not load")
		return
	}
	repos := d.org.Repositories()
	if len(repos) == 0 {
		d.r.add(Warn, checkRepository, "roles.yaml names no repository: no pull request will be reviewed")
		return
	}
	for i, repo := range repos {
		team := ""
		if t := d.org.TeamForRepo(repo); t != nil {
			team = " (team " + t.ID + ")"
		}
		cctx, cancel := d.bounded(ctx)
		prs, err := c.ListPullRequests(cctx, repo, bitbucket.ListOptions{MaxPages: 1})
		cancel()
		if err == nil {
			d.r.add(OK, checkRepository, "%s%s: pull requests readable (%s open)", repo, team, count(len(prs), 50))
			continue
		}
		o := describe(err, host)
		switch {
		case o.status == 0:
			// The server, not the repository: the others would say the same.
			d.r.add(Fail, checkRepository, "%s%s: %s. Check bitbucket.base_url and that this host can reach it", repo, team, o.words)
			if rest := len(repos) - i - 1; rest > 0 {
				d.r.add(Warn, checkRepository, "%d more not checked: %s is not reachable", rest, host)
			}
			return
		case anonymous && o.status >= 400 && o.status < 500 && o.status != http.StatusTooManyRequests:
			d.r.add(Warn, checkRepository, "%s%s: not readable without credentials (%d): private repositories need %s and %s, or %s",
				repo, team, o.status, config.EnvBitbucketUsername, config.EnvBitbucketToken, config.EnvBitbucketAccessToken)
		case o.status == http.StatusNotFound:
			d.r.add(Fail, checkRepository, "%s%s: %s. Check the name in roles.yaml (workspace/slug, as in the repository's URL) and that the account can read it", repo, team, o.words)
		case o.status == http.StatusForbidden:
			d.r.add(Fail, checkRepository, "%s%s: %s. The token lacks read:pullrequest:bitbucket, or the account has no access to this repository", repo, team, o.words)
		case o.status == http.StatusUnauthorized:
			d.r.add(Fail, checkRepository, "%s%s: %s. %s", repo, team, o.words, bitbucketAuthHint(d.secrets))
		default:
			d.r.add(Fail, checkRepository, "%s%s: %s", repo, team, o.words)
		}
	}
}

// count writes n, or "n or more" when a page came back full.
func count(n, page int) string {
	if n >= page {
		return fmt.Sprintf("%d or more", n)
	}
	return fmt.Sprint(n)
}

// checkJira checks the credentials (GET myself) and discovers each
// project roles.yaml names: the story-points field, the sub-task type and
// the issue types the rules watch.
func (d *doctor) checkJira(ctx context.Context) {
	var projects []string
	if d.org != nil {
		projects = d.org.Projects()
	}
	if d.cfg.Jira.BaseURL == "" {
		if len(projects) > 0 {
			d.r.add(Warn, checkJira, "off (jira.base_url is empty) but roles.yaml names Jira projects %s: their rules (test plans, design reviews, story points) do nothing. Set jira.base_url to https://<site>.atlassian.net",
				strings.Join(projects, ", "))
		} else {
			d.r.add(OK, checkJira, "off (jira.base_url is empty and roles.yaml names no Jira project)")
		}
		return
	}
	s := d.secrets
	switch {
	case (s.JiraEmail == "") != (s.JiraToken == ""):
		set, unset := config.EnvJiraEmail, config.EnvJiraToken
		if s.JiraEmail == "" {
			set, unset = unset, set
		}
		d.r.add(Fail, checkJira, "%s is set but %s is not: set both (the Atlassian account email and an API token) or neither", set, unset)
		return
	case !s.HasJiraAPI():
		d.r.add(Warn, checkJira, "no credentials (%s and %s): rolekeeper changes nothing in Jira, and the projects' fields cannot be checked",
			config.EnvJiraEmail, config.EnvJiraToken)
		return
	}
	host := hostOf(d.cfg.Jira.BaseURL)
	c, err := jira.New(jira.Options{
		BaseURL:    d.cfg.Jira.BaseURL,
		Email:      s.JiraEmail,
		Token:      s.JiraToken,
		HTTPClient: d.opts.HTTPClient,
		Timeout:    d.opts.Timeout,
		MaxRetries: -1,
	})
	if err != nil {
		d.r.add(Fail, checkJira, "%v: fix jira.base_url", err)
		return
	}
	cctx, cancel := d.bounded(ctx)
	me, err := c.Myself(cctx)
	cancel()
	if err != nil {
		o := describe(err, host)
		switch o.status {
		case http.StatusUnauthorized:
			d.r.add(Fail, checkJira, "%s. Check %s (the Atlassian account email) and %s (an API token of that account; a scoped token needs jira.base_url https://api.atlassian.com/ex/jira/<cloudId>)",
				o.words, config.EnvJiraEmail, config.EnvJiraToken)
		case http.StatusNotFound:
			d.r.add(Fail, checkJira, "%s (GET /rest/api/2/myself): jira.base_url (%s) is not a Jira Cloud site; use https://<site>.atlassian.net", o.words, d.cfg.Jira.BaseURL)
		default:
			d.r.add(Fail, checkJira, "%s (GET /rest/api/2/myself). Check jira.base_url (%s) and that this host can reach it", o.words, d.cfg.Jira.BaseURL)
		}
		return
	}
	d.r.add(OK, checkJira, "authenticated as %s (account id %s)", me.DisplayName, me.AccountID)

	if len(projects) == 0 {
		if d.org != nil {
			d.r.add(OK, checkJiraProject, "roles.yaml names no Jira project")
		}
		return
	}
	for _, key := range projects {
		d.checkProject(ctx, c, host, key)
	}
}

func (d *doctor) checkProject(ctx context.Context, c *jira.Client, host, key string) {
	team := d.org.TeamForProject(key)
	label := key
	if team != nil {
		label += " (team " + team.ID + ")"
	}
	cctx, cancel := d.bounded(ctx)
	meta, err := c.Discover(cctx, key)
	cancel()
	if err != nil {
		o := describe(err, host)
		if o.status == http.StatusNotFound {
			d.r.add(Fail, checkJiraProject, "%s: %s: the project does not exist or the account cannot browse it. Check the key in roles.yaml (teams.*.jira_projects) and the project's permissions (Browse, Create issues)", label, o.words)
			return
		}
		d.r.add(Fail, checkJiraProject, "%s: field discovery failed: %s", label, o.words)
		return
	}
	points := "no story-points field"
	if meta.StoryPointsField != "" {
		points = fmt.Sprintf("story points in %s (%s)", meta.StoryPointsField, meta.StoryPointsName)
	}
	subtasks := "no sub-task type"
	if meta.HasSubtasks {
		subtasks = fmt.Sprintf("sub-tasks as %q", meta.SubtaskTypeName)
	}
	d.r.add(OK, checkJiraProject, "%s: %s, %s", label, points, subtasks)

	// What the rules of the project's team need from it.
	need := map[roles.Kind]bool{}
	missing := map[string][]string{} // issue type → rule ids watching it
	if team != nil {
		for _, k := range []roles.Kind{roles.KindTestPlan, roles.KindDesignReview, roles.KindStoryPoints} { // the kinds acting on issues
			for _, r := range d.org.RulesOfKind(k) {
				if !r.AppliesToTeam(team.ID) {
					continue
				}
				need[k] = true
				for _, t := range r.IssueTypes {
					if _, ok := meta.TypeID(t); !ok {
						missing[t] = append(missing[t], r.ID)
					}
				}
			}
		}
	}
	if !meta.HasSubtasks && (need[roles.KindTestPlan] || need[roles.KindDesignReview]) {
		d.r.add(Warn, checkJiraProject, "%s: no sub-task issue type: test plans and design reviews are created as linked issues", label)
	}
	if meta.StoryPointsField == "" && need[roles.KindStoryPoints] {
		d.r.add(Warn, checkJiraProject, "%s: no story-points field: the story-points rule checks user stories only. Add \"Story point estimate\" to the project's Story screen", label)
	}
	types := make([]string, 0, len(missing))
	for t := range missing {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		d.r.add(Warn, checkJiraProject, "%s: no issue type %q: %s never %s there", label, t,
			strings.Join(missing[t], ", "), plural(len(missing[t]), "triggers", "trigger"))
	}
}
