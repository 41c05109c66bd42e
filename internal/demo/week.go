package demo

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/store"
)

// The repositories and Jira projects of the sample week (teams of the
// shipped roles.yaml).
const (
	repoCheckout    = "reloadly/checkout-service"
	repoPayments    = "reloadly/payments-api"
	repoInfra       = "reloadly/platform-infra"
	repoPortal      = "reloadly/developer-portal"
	projectPayments = "PAY"
	projectCheckout = "CHK"
)

// weekStart is the Monday of the sample week, 2026-W52: Kofi Mensah, one
// of the two technical leads of payments, is away from 21 Dec 2026 to
// 2 Jan 2027 in the shipped roles.yaml.
var weekStart = time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC)

// weekName is weekStart's ISO week.
const weekName = "2026-W52"

// at is a moment of the sample week: day 0 is Monday.
func at(day, hour, minute int) time.Time {
	return weekStart.AddDate(0, 0, day).Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
}

// replay plays the sample week against the running daemon, narrating.
type replay struct {
	p     printer
	sb    *sandbox
	d     *daemon
	clk   *clock
	pause time.Duration
	// findings reads the findings rolekeeper recorded (the report's input).
	findings func(ctx context.Context) ([]model.Finding, error)

	// What happened, for the closing summary and the tests.
	prs       map[string]int // by scenario name
	decisions []string       // public pages of the decisions shown
	// last is the decision shown last per subject ("repo#pr", issue key).
	last     map[string]server.DecisionView
	gateID   string
	deployed string // merge commit deployed to production
	epic     string
	story    string
}

// step is one moment of the week.
type step struct {
	at    time.Time
	title string
	run   func(ctx context.Context) error
}

func (r *replay) steps() []step {
	return []step{
		{at(0, 9, 14), "1. checkout: a Go change with its test", r.checkoutPromo},
		{at(0, 10, 2), "2. platform: a Helm chart and the Dockerfile change", r.infraChange},
		{at(0, 11, 37), "3. platform: the public API specification changes", r.apiSpec},
		{at(0, 14, 5), "4. checkout: a new dependency in go.mod, and no test", r.newDependency},
		{at(1, 9, 40), "5. payments: one technical lead is away", r.awayLead},
		{at(1, 11, 15), "6. payments: the author approves their own pull request", r.selfApproval},
		{at(1, 16, 45), "7. checkout: merged without an approval", r.unapprovedMerge},
		{at(2, 10, 0), "8. payments: a production deployment waits for its product owner", r.deployment},
		{at(2, 11, 20), "9. Jira: an epic needs a test plan, a story needs points", r.jira},
	}
}

// run plays every step.
func (r *replay) run(ctx context.Context) error {
	r.prs = map[string]int{}
	r.last = map[string]server.DecisionView{}
	for _, s := range r.steps() {
		if err := r.wait(ctx); err != nil {
			return err
		}
		r.clk.JumpTo(s.at)
		r.p.headline(s.at.Format("Mon 2 Jan 15:04"), s.title)
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.title, err)
		}
	}
	return nil
}

// wait lets a person read before the next thing happens.
func (r *replay) wait(ctx context.Context) error {
	if r.pause <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(r.pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// later moves the clock a few minutes on within a step, and pauses.
func (r *replay) later(ctx context.Context, minutes int) error {
	r.clk.JumpTo(r.clk.Now().Add(time.Duration(minutes) * time.Minute))
	return r.wait(ctx)
}

// ---- the week ----

func (r *replay) checkoutPromo(ctx context.Context) error {
	id, err := r.openPR(ctx, repoCheckout, "diego", bitbuckettest.PR{
		Title:        "Apply promo codes at checkout",
		Description:  "Validates the code against the campaign service and applies the discount before tax.",
		SourceBranch: "feature/CHK-412-promo-codes",
		Files: []model.ChangedFile{
			{Path: "internal/cart/promo.go", Status: model.FileAdded},
			{Path: "internal/cart/promo_test.go", Status: model.FileAdded},
			{Path: "internal/cart/cart.go", Status: model.FileModified},
		},
	})
	r.prs["checkout-promo"] = id
	return err
}

func (r *replay) infraChange(ctx context.Context) error {
	id, err := r.openPR(ctx, repoInfra, "ravi", bitbuckettest.PR{
		Title:        "payments-api: raise memory limit, distroless base image",
		Description:  "OOM kills during the refund batch; the new base image drops 140 MB.",
		SourceBranch: "chore/PLAT-88-payments-memory",
		Files: []model.ChangedFile{
			{Path: "helm/payments-api/values.yaml", Status: model.FileModified},
			{Path: "Dockerfile", Status: model.FileModified},
		},
	})
	r.prs["infra"] = id
	return err
}

func (r *replay) apiSpec(ctx context.Context) error {
	id, err := r.openPR(ctx, repoPortal, "hana", bitbuckettest.PR{
		Title:        "Document partial refunds in the public API",
		Description:  "Adds POST /refunds/{id}/partial and its examples.",
		SourceBranch: "docs/PLAT-91-partial-refunds",
		Files: []model.ChangedFile{
			{Path: "openapi.yaml", Status: model.FileModified},
			{Path: "content/guides/refunds.md", Status: model.FileModified},
		},
	})
	r.prs["api-spec"] = id
	return err
}

func (r *replay) newDependency(ctx context.Context) error {
	id, err := r.openPR(ctx, repoCheckout, "diego", bitbuckettest.PR{
		Title:        "Switch to payments SDK v3",
		Description:  "The v2 SDK is end-of-life in January.",
		SourceBranch: "feature/CHK-420-payments-sdk-v3",
		Files: []model.ChangedFile{
			{Path: "go.mod", Status: model.FileModified},
			{Path: "go.sum", Status: model.FileModified},
			{Path: "internal/payments/client.go", Status: model.FileModified},
		},
	})
	r.prs["sdk"] = id
	return err
}

func (r *replay) awayLead(ctx context.Context) error {
	id, err := r.openPR(ctx, repoPayments, "ravi", bitbuckettest.PR{
		Title:        "Partial refunds",
		Description:  "Refunds part of a captured payment; the remainder stays capturable.",
		SourceBranch: "feature/PAY-231-partial-refunds",
		Files: []model.ChangedFile{
			{Path: "internal/refunds/partial.go", Status: model.FileAdded},
			{Path: "internal/refunds/partial_test.go", Status: model.FileAdded},
			{Path: "internal/api/routes.go", Status: model.FileModified},
		},
	})
	r.prs["refunds"] = id
	return err
}

func (r *replay) selfApproval(ctx context.Context) error {
	id := r.prs["refunds"]
	if err := r.approve(ctx, repoPayments, id, "ravi"); err != nil {
		return err
	}
	if err := r.later(ctx, 125); err != nil {
		return err
	}
	if err := r.approve(ctx, repoPayments, id, "amara"); err != nil {
		return err
	}
	if err := r.later(ctx, 20); err != nil {
		return err
	}
	r.deployed = randomHex(20)
	return r.merge(ctx, repoPayments, id, "ravi", r.deployed)
}

func (r *replay) unapprovedMerge(ctx context.Context) error {
	return r.merge(ctx, repoCheckout, r.prs["sdk"], "diego", randomHex(20))
}

func (r *replay) deployment(ctx context.Context) error {
	repo, id := repoPayments, r.prs["refunds"]
	r.p.say("", "The production step of the payments-api pipeline (build #318) runs `rolekeeper gate`:")
	g, err := r.d.askGate(ctx, repo, r.deployed, "production", 318)
	if err != nil {
		return err
	}
	r.p.say("  ", "⇢ POST /api/v1/gates (%s, %s, production): 201", repo, r.deployed)
	r.gateID = g.ID
	if err := r.showGate(ctx, g); err != nil {
		return err
	}
	r.showDeployStatus(repo)
	r.showBotComments(repo, id, 1)

	if err := r.later(ctx, 12); err != nil {
		return err
	}
	// A technical lead is not a product owner: the command is refused,
	// with a reply that says why.
	if err := r.comment(ctx, repo, id, "amara", "/approve-deploy production"); err != nil {
		return err
	}
	if g, err = r.d.gate(ctx, r.gateID); err != nil {
		return err
	}
	r.p.say("  ", "gate %s is still %s", g.ID, g.State)
	r.showBotComments(repo, id, 1)

	if err := r.later(ctx, 9); err != nil {
		return err
	}
	if err := r.comment(ctx, repo, id, "lucia", "/approve-deploy production"); err != nil {
		return err
	}
	if g, err = r.d.gate(ctx, r.gateID); err != nil {
		return err
	}
	if err := r.showGate(ctx, g); err != nil {
		return err
	}
	r.showDeployStatus(repo)
	if g.State == "approved" {
		r.sb.bb.AddDeployment(repo, "production", r.deployed, "SUCCESSFUL")
		r.p.say("  ", "The pipeline step passes: build #318 deploys %s to production.", short(r.deployed))
	}
	return nil
}

func (r *replay) jira(ctx context.Context) error {
	lucia := r.sb.org.Person("lucia").AccountID
	r.epic = r.sb.jira.AddIssue(jiratest.NewIssue{
		Project: projectPayments, Type: "Epic", Summary: "Partial refunds",
		Description: "Merchants refund part of a captured payment from the dashboard and the API.",
		Reporter:    lucia,
	})
	r.p.say("", "%s creates epic %s %q in Jira.", r.sb.name("lucia"), r.epic, "Partial refunds")
	if err := r.issueEvent(ctx, "jira:issue_created", r.epic); err != nil {
		return err
	}
	r.showSubtasks(r.epic)

	if err := r.later(ctx, 6); err != nil {
		return err
	}
	version := r.sb.jira.AddVersion(projectPayments, "2027.1")
	r.sb.jira.Update(r.epic, func(e *jiratest.IssueEdit) { e.FixVersions = []string{version} })
	r.p.say("", "%s puts %s in fix version 2027.1; Jira sends an update.", r.sb.name("lucia"), r.epic)
	if err := r.issueEvent(ctx, "jira:issue_updated", r.epic, model.ChangeItem{
		Field: "Fix Version", FieldID: "fixVersions", To: version, ToString: "2027.1",
	}); err != nil {
		return err
	}
	r.showSubtasks(r.epic)

	if err := r.later(ctx, 14); err != nil {
		return err
	}
	sprintName := "Checkout Sprint 51"
	sprint := r.sb.jira.AddSprint(sprintName, "active")
	r.story = r.sb.jira.AddIssue(jiratest.NewIssue{
		Project: projectCheckout, Type: "Story", Summary: "Pay with a saved card",
		Description: "As a returning customer, I want to pick a saved card at checkout, so that I pay in one click.",
		Reporter:    r.sb.org.Person("nadia").AccountID,
		Sprints:     []int{sprint},
	})
	r.p.say("", "%s adds story %s %q to the open sprint %q, without story points.",
		r.sb.name("nadia"), r.story, "Pay with a saved card", sprintName)
	if err := r.issueEvent(ctx, "jira:issue_created", r.story); err != nil {
		return err
	}
	for _, c := range r.sb.jira.Comments(r.story) {
		r.p.say("  Jira now: ", "rolekeeper comments on %s: %s", r.story, clip(oneLine(c), 200))
	}
	return nil
}

// ---- actions, as people do them upstream ----

// openPR opens a pull request in the sandbox and delivers Bitbucket's
// pullrequest:created webhook.
func (r *replay) openPR(ctx context.Context, repo, author string, pr bitbuckettest.PR) (int, error) {
	pr.Author = r.sb.actor(author)
	id := r.sb.bb.AddPullRequest(repo, pr)
	r.p.say("", "%s opens %s#%d %q", r.sb.name(author), repo, id, pr.Title)
	r.p.say("  changes: ", "%s", files(pr.Files))
	return id, r.prEvent(ctx, "pullrequest:created", repo, id, pr.Author)
}

func (r *replay) approve(ctx context.Context, repo string, id int, who string) error {
	a := r.sb.actor(who)
	if err := r.sb.bb.Approve(repo, id, a); err != nil {
		return err
	}
	r.p.say("", "%s approves %s#%d", r.sb.name(who), repo, id)
	return r.prEvent(ctx, "pullrequest:approved", repo, id, a)
}

func (r *replay) merge(ctx context.Context, repo string, id int, who, commit string) error {
	a := r.sb.actor(who)
	if err := r.sb.bb.Merge(repo, id, a, commit); err != nil {
		return err
	}
	r.p.say("", "%s merges %s#%d (merge commit %s)", r.sb.name(who), repo, id, short(commit))
	if err := r.prEvent(ctx, "pullrequest:fulfilled", repo, id, a); err != nil {
		return err
	}
	fs, err := r.findings(ctx)
	if err != nil {
		return err
	}
	ref := fmt.Sprintf("%s#%d", repo, id)
	for _, f := range fs {
		if f.Ref != ref {
			continue
		}
		verdict := "finding (violation)"
		if f.Held {
			verdict = "check (held)"
		}
		r.p.say("  recorded for the weekly report, "+verdict+": ", "%s", f.Reason)
	}
	return nil
}

func (r *replay) comment(ctx context.Context, repo string, id int, who, body string) error {
	cid := r.sb.bb.AddComment(repo, id, r.sb.actor(who), body)
	if cid == "" {
		return fmt.Errorf("no pull request %s#%d in the sandbox", repo, id)
	}
	r.p.say("", "%s comments on %s#%d: %s", r.sb.name(who), repo, id, body)
	_, err := r.bitbucket(ctx, "pullrequest:comment_created", r.sb.bb.WebhookCommentBody(repo, id, cid))
	return err
}

// prEvent delivers a pull-request webhook, waits until rolekeeper has
// processed it, and shows what it decided and what Bitbucket now shows.
func (r *replay) prEvent(ctx context.Context, key, repo string, id int, actor model.Actor) error {
	delivery, err := r.bitbucket(ctx, key, r.sb.bb.WebhookBody(key, repo, id, actor))
	if err != nil {
		return err
	}
	ds, err := r.d.decisions(ctx, url.Values{"repository": {repo}, "pr": {strconv.Itoa(id)}})
	if err != nil {
		return err
	}
	r.showDecisions(fmt.Sprintf("%s#%d", repo, id), ds, delivery)
	r.showPR(repo, id)
	return nil
}

// bitbucket delivers a webhook and waits until it is processed.
func (r *replay) bitbucket(ctx context.Context, key string, body []byte) (string, error) {
	delivery, err := r.d.sendBitbucket(ctx, key, body)
	if err != nil {
		return "", err
	}
	if err := r.d.waitProcessed(ctx, delivery); err != nil {
		return "", err
	}
	r.p.say("  ", "⇢ webhook %s, signed → POST /webhooks/bitbucket: 202, processed", key)
	return delivery, nil
}

func (r *replay) issueEvent(ctx context.Context, event, key string, changes ...model.ChangeItem) error {
	delivery, err := r.d.sendJira(ctx, r.sb.jira.IssueEventBody(event, key, changes...))
	if err != nil {
		return err
	}
	if err := r.d.waitProcessed(ctx, delivery); err != nil {
		return err
	}
	r.p.say("  ", "⇢ webhook %s, signed → POST /webhooks/jira: 202, processed", event)
	ds, err := r.d.decisions(ctx, url.Values{"issue": {key}})
	if err != nil {
		return err
	}
	if !r.showDecisions(key, ds, delivery) {
		r.p.say("  ", "rolekeeper re-read %s: every rule is satisfied, nothing to do", key)
	}
	return nil
}

// showDecisions prints the decisions a delivery produced about a subject;
// false when none.
func (r *replay) showDecisions(subject string, ds []server.DecisionView, delivery string) bool {
	shown := false
	for _, v := range ds {
		if v.DeliveryID != delivery {
			continue
		}
		var prev *server.DecisionView
		if p, ok := r.last[subject]; ok {
			prev = &p
		}
		r.p.decision(v, prev)
		r.last[subject] = v
		r.decisions = append(r.decisions, v.URL)
		shown = true
	}
	return shown
}

// ---- what the sandbox shows ----

func (r *replay) showPR(repo string, id int) {
	pr, err := r.sb.bb.PullRequest(repo, id)
	if err != nil {
		return
	}
	var parts []string
	var names []string
	for _, a := range pr.Reviewers {
		names = append(names, a.DisplayName)
	}
	if len(names) > 0 {
		parts = append(parts, "reviewers "+strings.Join(names, ", "))
	}
	sts := r.sb.bb.Statuses(repo, pr.SourceCommit)
	for _, k := range []string{rules.StatusReview, rules.StatusTests} {
		if st, ok := sts[k]; ok {
			parts = append(parts, k+" "+st.State)
		}
	}
	if n := len(r.botComments(repo, id, true)); n > 0 {
		parts = append(parts, fmt.Sprintf("%d rolekeeper comment", n))
	}
	parts = append(parts, strings.ToLower(string(pr.State)))
	r.p.say("  Bitbucket now: ", "%s", strings.Join(parts, " · "))
}

// botComments are rolekeeper's comments on a pull request: the one
// explaining comment (explaining true) or the others (gate notices and
// replies).
func (r *replay) botComments(repo string, id int, explaining bool) []model.Comment {
	me := r.sb.bb.CurrentUser().AccountID
	var out []model.Comment
	for _, c := range r.sb.bb.Comments(repo, id) {
		if c.Author.AccountID != me {
			continue
		}
		if isExplaining(c.Body) == explaining {
			out = append(out, c)
		}
	}
	return out
}

// isExplaining tells the pull request's explaining comment from gate
// notices: it starts with the bold name alone on its line.
func isExplaining(body string) bool { return strings.HasPrefix(body, "**rolekeeper**\n") }

// showBotComments prints the last n gate comments rolekeeper posted.
func (r *replay) showBotComments(repo string, id, n int) {
	cs := r.botComments(repo, id, false)
	if len(cs) > n {
		cs = cs[len(cs)-n:]
	}
	for _, c := range cs {
		r.p.say("  Bitbucket now: ", "rolekeeper comments on #%d: %s", id, r.names(oneLine(c.Body)))
	}
}

// names shows Bitbucket's @{account-id} mentions, and account ids, as the
// people's names.
func (r *replay) names(s string) string {
	for _, p := range r.sb.org.People {
		s = strings.ReplaceAll(s, "@{"+p.AccountID+"}", "@"+p.DisplayName())
		s = strings.ReplaceAll(s, "account "+p.AccountID, p.DisplayName())
		s = strings.ReplaceAll(s, p.AccountID, p.DisplayName())
	}
	return s
}

func (r *replay) showDeployStatus(repo string) {
	key := rules.StatusDeployPrefix + "production"
	if st, ok := r.sb.bb.Statuses(repo, r.deployed)[key]; ok {
		r.p.say("  Bitbucket now: ", "%s %s on %s: %s", key, st.State, short(r.deployed), st.Description)
	}
}

// showGate prints a gate as the API shows it, with the decision rolekeeper
// recorded for its latest state (the page its commit status links to).
func (r *replay) showGate(ctx context.Context, g gateView) error {
	r.p.say("  ", "gate %s: %s", g.ID, strings.ToUpper(g.State))
	if g.State == store.GatePending {
		var names []string
		for _, a := range g.Approvers {
			names = append(names, a.Name)
		}
		r.p.say("    may approve: ", "%s", strings.Join(names, ", "))
		if len(g.History) > 0 {
			r.p.say("    why: ", "%s", g.History[0].Detail)
		}
	} else {
		r.p.say("    decided by: ", "%s", r.sb.name(g.DecidedBy))
		r.p.say("    why: ", "%s", g.Reason)
	}
	ds, err := r.d.decisions(ctx, url.Values{"kind": {string(model.SubjectGate)}, "repository": {strings.ToLower(g.Repository)}})
	if err != nil {
		return err
	}
	if len(ds) > 0 {
		v := ds[len(ds)-1]
		r.p.say("    recorded: ", "%s", v.URL)
		r.decisions = append(r.decisions, v.URL)
	}
	return nil
}

func (r *replay) showSubtasks(key string) {
	is, ok := r.sb.jira.Issue(key)
	if !ok {
		return
	}
	if len(is.Subtasks) == 0 {
		r.p.say("  Jira now: ", "%s has no sub-task", key)
	}
	for _, k := range is.Subtasks {
		st, _ := r.sb.jira.Issue(k)
		r.p.say("  Jira now: ", "%s has sub-task %s %q, assigned to %s", key, k, st.Summary, r.sb.name(st.Assignee))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip shortens s to n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
