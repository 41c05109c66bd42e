package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// carryOut does what Apply asked, after the new state was stored: decision
// records first (the status links to the latest), then the break-glass
// finding and follow-up, the status, mentions and replies. Upstream
// failures are logged, not returned: the gate's state is what matters, a
// missing status is posted again on the next read, a failed mention is
// tried again. It returns the gate with its bookkeeping updated.
func (s *Service) carryOut(ctx context.Context, g *store.Gate, effs []Effect, p Policy, inputs []Input) *store.Gate {
	if len(effs) == 0 {
		return g
	}
	var (
		decisionID   int64
		publicID     string // decisionID's public id: the link
		status       bool
		mentionFail  bool
		followUp     string
		followUpErr  string
		statusPosted string
	)
	for _, e := range effs {
		switch e.Kind {
		case EffRecord:
			id, pub, err := s.record(ctx, g, e.Text, p, inputs)
			if err != nil {
				s.log.Error("record gate decision", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.Error(err))
				continue
			}
			decisionID, publicID = id, pub
		case EffStatus:
			status = true
		case EffFinding:
			s.finding(ctx, g)
		case EffFollowUp:
			followUp, followUpErr = s.followUp(ctx, g, p)
		}
	}
	if decisionID == 0 {
		decisionID, publicID = readDetails(g).DecisionID, readDetails(g).DecisionPublicID
	}
	if readDetails(g).StatusPosted != g.State {
		status = true // an earlier post failed, or a race was lost: show the phase now
	}
	if status {
		if st := s.postStatus(ctx, g, publicID); st != "" {
			statusPosted = st
		}
	}
	for _, e := range effs {
		switch e.Kind {
		case EffMention:
			if err := s.comment(ctx, g, e.PR, s.mentionText(g, p, publicID)); err != nil {
				mentionFail = true
			}
		case EffReply:
			_ = s.comment(ctx, g, e.PR, s.replyText(e))
		}
	}
	if decisionID == 0 && statusPosted == "" && followUp == "" && followUpErr == "" && !mentionFail {
		return g
	}
	ng, err := s.patch(ctx, g.ID, func(cur *store.Gate) {
		d := readDetails(cur)
		if decisionID > d.DecisionID {
			d.DecisionID, d.DecisionPublicID = decisionID, publicID
		}
		if statusPosted != "" {
			d.StatusPosted = statusPosted
		}
		if followUp != "" {
			cur.FollowUp = followUp
			d.History = append(d.History, Entry{At: s.now(), What: "follow-up", Detail: "opened " + followUp})
		}
		if followUpErr != "" {
			d.FollowUpError = followUpErr
			d.History = append(d.History, Entry{At: s.now(), What: "follow-up", Detail: followUpErr})
		}
		if mentionFail && cur.State == store.GatePending {
			cur.Notified = false // mention again on the next read
		}
		writeDetails(cur, d)
	})
	if err != nil {
		s.log.Warn("gate bookkeeping", zap.String("gate", g.ID), zap.Error(err))
		return g
	}
	return ng
}

// patch reads, changes and writes a gate, retrying lost races.
func (s *Service) patch(ctx context.Context, id string, change func(*store.Gate)) (*store.Gate, error) {
	for attempt := 0; attempt < 5; attempt++ {
		g, err := s.o.Store.GetGate(ctx, id)
		if err != nil {
			return nil, err
		}
		change(g)
		err = s.o.Store.UpdateGate(ctx, g)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return g, err
	}
	return nil, errors.New("gate: update lost too many races")
}

// repairStatus posts the status of a gate whose status Bitbucket does not
// show yet (an earlier post failed).
func (s *Service) repairStatus(ctx context.Context, g *store.Gate) {
	d := readDetails(g)
	if s.o.DryRun || d.StatusPosted == g.State {
		return
	}
	if g.State == store.GatePending && len(d.History) == 0 {
		return
	}
	st := s.postStatus(ctx, g, d.DecisionPublicID)
	if st == "" {
		return
	}
	if _, err := s.patch(ctx, g.ID, func(cur *store.Gate) {
		cd := readDetails(cur)
		if cur.State == st {
			cd.StatusPosted = st
			writeDetails(cur, cd)
		}
	}); err != nil {
		s.log.Warn("gate bookkeeping", zap.String("gate", g.ID), zap.Error(err))
	}
}

// StatusState is the commit status state that shows a gate's phase.
func StatusState(phase string) string {
	switch phase {
	case store.GateApproved:
		return rules.StateSuccessful
	case store.GateRejected, store.GateExpired:
		return rules.StateFailed
	}
	return rules.StateInProgress
}

// StatusKey is the commit status key of an environment: at most 40
// characters, as Bitbucket requires (see rules.DeployStatusKey).
func StatusKey(environment string) string {
	return rules.DeployStatusKey(environment)
}

// postStatus posts the status for the gate's phase and returns the phase
// posted ("" when nothing was posted).
func (s *Service) postStatus(ctx context.Context, g *store.Gate, publicID string) string {
	if s.o.DryRun {
		return ""
	}
	desc := "waiting for a " + g.Environment + " approval (gate " + g.ID + ")"
	switch g.State {
	case store.GateApproved:
		desc = "approved by " + s.name(g.DecidedBy)
		if g.BreakGlass {
			desc = s.glassSentence(g)
		}
	case store.GateRejected:
		desc = "rejected by " + s.name(g.DecidedBy) + ": " + g.Reason
	case store.GateExpired:
		desc = "expired without an approval"
	}
	err := s.o.Host.SetCommitStatus(ctx, g.Repository, g.Commit, model.CommitStatus{
		Key: StatusKey(g.Environment), State: StatusState(g.State), Name: "rolekeeper: " + g.Environment + " deployment approval",
		Description: truncate(desc, 140), URL: s.link(g, publicID),
	})
	if err != nil {
		s.log.Warn("post gate status", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.Error(err))
		return ""
	}
	return g.State
}

// link is where a person reads about the gate: its latest decision's
// public page, or the API.
func (s *Service) link(g *store.Gate, publicID string) string {
	if publicID != "" {
		return store.DecisionURL(s.o.PublicURL, publicID)
	}
	return strings.TrimRight(s.o.PublicURL, "/") + "/api/v1/gates/" + g.ID
}

func (s *Service) comment(ctx context.Context, g *store.Gate, pr int, body string) error {
	if s.o.DryRun {
		return nil
	}
	if _, err := s.o.Host.CreateComment(ctx, g.Repository, pr, body); err != nil {
		s.log.Warn("gate comment", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.Int("pr", pr), zap.Error(err))
		return err
	}
	return nil
}

// mentionText asks the approvers, by Bitbucket mention, to decide. No line
// starts with a command, so rolekeeper never reads its own comment as one.
func (s *Service) mentionText(g *store.Gate, p Policy, publicID string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**rolekeeper**: the **%s** deployment of `%s` waits for an approval (gate %s).\n\n", g.Environment, short(g.Commit), g.ID)
	if len(p.Deploy.Eligible) > 0 {
		var who []string
		for _, e := range p.Deploy.Eligible {
			who = append(who, "@{"+e.AccountID+"}")
		}
		fmt.Fprintf(&b, "Who may approve: %s — %s.\n\n", strings.Join(who, ", "), p.Deploy.Reason)
		fmt.Fprintf(&b, "To approve, approve this pull request or comment `/approve-deploy %s`; to stop it, comment `/reject-deploy %s <reason>`.", g.Environment, g.Environment)
		if p.Deploy.InvalidateOnPush {
			b.WriteString(" An approval given before the last push does not count: approve again.")
		}
	} else {
		fmt.Fprintf(&b, "Nobody can approve it: %s.", strings.Join(append([]string{p.Deploy.Reason}, p.Deploy.Notes...), "; "))
	}
	if p.Glass.Role != "" {
		fmt.Fprintf(&b, " In an emergency a %s may comment `/break-glass %s <reason>`.", p.Glass.Role, g.Environment)
	}
	b.WriteString("\n\n")
	details := store.GateURL(s.o.PublicURL, publicID) // the gate as it is whenever it is opened
	if details == "" {
		details = s.link(g, publicID)
	}
	fmt.Fprintf(&b, "The gate expires at %s. Details: %s", g.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"), details)
	return b.String()
}

// replyText answers a command that changes nothing. The mention is the
// account id (Bitbucket needs it to notify); the text names the person by
// their roles.yaml name, and someone not in roles.yaml by a mention, which
// Bitbucket shows as their name.
func (s *Service) replyText(e Effect) string {
	text := e.Text
	if e.Account != "" {
		name := s.name(e.Account)
		if name == e.Account {
			name = "@{" + e.Account + "}"
		}
		text = strings.NewReplacer("account "+e.Account, name, e.Account, name).Replace(text)
	}
	return fmt.Sprintf("@{%s} your %s.", e.Account, text)
}

// glassSentence says who broke a gate's glass, how and why, claiming no
// more than was authenticated: "break-glass by Raj Patel: <reason>" for
// the comment Bitbucket authenticated; "break-glass via admin token,
// naming Raj Patel: <reason>" for the API, whose reason already says so.
func (s *Service) glassSentence(g *store.Gate) string {
	return rules.GlassSentence(s.glassBy(g), g.Reason)
}

// glassBy names who broke the glass ("" for the admin token: no person).
func (s *Service) glassBy(g *store.Gate) string {
	if g.DecidedBy == AdminToken {
		return ""
	}
	return s.name(g.DecidedBy)
}

// finding records a break-glass for the weekly report (once per gate).
func (s *Service) finding(ctx context.Context, g *store.Gate) {
	f := rules.BreakGlassFinding(rules.GlassBreak{Gate: g.ID, RuleID: g.RuleID, Team: g.Team, Repository: g.Repository,
		Commit: g.Commit, Environment: g.Environment, URL: strings.TrimRight(s.o.PublicURL, "/") + "/api/v1/gates/" + g.ID,
		By: g.DecidedBy, ByName: s.glassBy(g), Reason: g.Reason, At: g.DecidedAt, Now: s.now()})
	if _, err := s.o.Store.AddFinding(ctx, f); err != nil {
		s.log.Error("record break-glass finding", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.Error(err))
	}
}

// followUp opens the Jira follow-up of a break-glass, assigned to the
// team's product owner. It returns the issue key, or why there is none.
func (s *Service) followUp(ctx context.Context, g *store.Gate, p Policy) (string, string) {
	if s.o.FollowUps == nil || g.FollowUp != "" {
		return "", ""
	}
	if s.o.DryRun {
		return "", "dry-run: no Jira follow-up opened"
	}
	org := s.o.Roles.Get()
	team := org.Team(g.Team)
	if team == nil || len(team.JiraProjects) == 0 {
		return "", "no Jira follow-up: team " + g.Team + " has no jira_projects in roles.yaml"
	}
	// The team's product owner, preferring one who did not author the change.
	assignee := ""
	// The break-glass rule names the follow-up's role (follow_up);
	// without one, a holder of the gate's deploy-approval role.
	for _, role := range []string{p.Glass.FollowUp, p.Deploy.Role} {
		if role == "" {
			continue
		}
		for _, h := range org.Holders(role, g.Team) {
			if h.AccountID == "" || assignee != "" && !slices.Contains(p.Deploy.Authors, assignee) {
				continue
			}
			if assignee == "" || !slices.Contains(p.Deploy.Authors, h.AccountID) {
				assignee = h.AccountID
			}
		}
	}
	summary := fmt.Sprintf("Break-glass follow-up: %s deployment of %s@%s", g.Environment, g.Repository, short(g.Commit))
	desc := fmt.Sprintf("Deployment gate %s was opened without the approval rule %s asks for: %s.\n\n"+
		"Please review the change after the fact and record the outcome here.\n\nGate: %s",
		g.ID, g.RuleID, s.glassSentence(g), strings.TrimRight(s.o.PublicURL, "/")+"/api/v1/gates/"+g.ID)
	key, err := s.o.FollowUps.CreateFollowUp(ctx, team.JiraProjects[0], summary, desc, assignee)
	if err != nil {
		s.log.Error("break-glass follow-up", zap.String("gate", g.ID), zap.String("team", g.Team), zap.Error(err))
		return "", "no Jira follow-up: " + err.Error()
	}
	return key, ""
}

// decisionDoc is the stored decision of a gate: its state, the policy it
// was decided under and its history.
type decisionDoc struct {
	Gate         string             `json:"gate"`
	Change       string             `json:"change"`
	State        string             `json:"state"`
	Repository   string             `json:"repository"`
	Commit       string             `json:"commit"`
	Environment  string             `json:"environment"`
	DecidedBy    string             `json:"decided_by,omitempty"`
	DecidedAt    *time.Time         `json:"decided_at,omitempty"`
	Reason       string             `json:"reason,omitempty"`
	BreakGlass   bool               `json:"break_glass,omitempty"`
	Via          string             `json:"break_glass_via,omitempty"`
	Named        string             `json:"break_glass_names,omitempty"`
	PullRequests []int              `json:"pull_requests"`
	Policy       rules.DeployResult `json:"policy"`
	History      []Entry            `json:"history"`
}

func (s *Service) record(ctx context.Context, g *store.Gate, change string, p Policy, inputs []Input) (int64, string, error) {
	doc := decisionDoc{Gate: g.ID, Change: change, State: g.State, Repository: g.Repository, Commit: g.Commit, Environment: g.Environment,
		DecidedBy: g.DecidedBy, Reason: g.Reason, BreakGlass: g.BreakGlass, PullRequests: g.PRs, Policy: p.Deploy, History: readDetails(g).History}
	if g.BreakGlass {
		d := readDetails(g)
		doc.Via, doc.Named = d.Via, d.Named
	}
	if !g.DecidedAt.IsZero() {
		t := g.DecidedAt
		doc.DecidedAt = &t
	}
	if doc.PullRequests == nil {
		doc.PullRequests = []int{}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return 0, "", err
	}
	snap, err := json.Marshal(struct {
		Inputs []Input `json:"inputs"`
	}{inputs})
	if err != nil {
		return 0, "", err
	}
	summary := fmt.Sprintf("gate %s: %s deployment of %s@%s", g.ID, g.Environment, g.Repository, short(g.Commit))
	switch {
	case change == "asked":
		summary += " asked; " + p.Deploy.Reason
	case g.BreakGlass:
		summary += " opened by " + s.glassSentence(g)
	case g.State == store.GateApproved:
		summary += fmt.Sprintf(" approved by %s: %s", s.name(g.DecidedBy), g.Reason)
	case g.State == store.GateRejected:
		summary += fmt.Sprintf(" rejected by %s: %s", s.name(g.DecidedBy), g.Reason)
	case g.State == store.GateExpired:
		summary += " expired: " + g.Reason
	default:
		summary += " is " + g.State
	}
	outcome := "recorded"
	if s.o.DryRun {
		outcome = "dry-run: nothing posted upstream"
	}
	if change != "asked" && g.State != store.GatePending {
		s.decided.WithLabelValues(g.Environment, g.State, strconv.FormatBool(g.BreakGlass)).Inc()
		s.log.Info("gate decided", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.String("environment", g.Environment),
			zap.String("state", g.State), zap.String("decided_by", g.DecidedBy), zap.String("reason", g.Reason))
	}
	rec := &store.DecisionRecord{Kind: model.SubjectGate, Repository: g.Repository, Commit: g.Commit,
		Team: g.Team, Trigger: "gate." + change, Summary: summary, Decision: body, Snapshot: snap, Outcome: outcome, CreatedAt: s.now()}
	id, err := s.o.Store.SaveDecision(ctx, rec)
	return id, rec.PublicID, err
}

// name is a person's display name from roles.yaml, or the account id.
func (s *Service) name(account string) string {
	if account == Automatic || account == "" {
		return Automatic
	}
	if account == AdminToken {
		return "the admin token"
	}
	if p := s.o.Roles.Get().PersonByAccount(account); p != nil {
		return p.DisplayName()
	}
	return account
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
