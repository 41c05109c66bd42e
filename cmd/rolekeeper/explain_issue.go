package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// issueArgs describe a Jira issue for `explain --issue`.
type issueArgs struct {
	key, typ, status, points, labels, priority, description, created, sprint *string
}

func issueFlags(fs *flag.FlagSet) issueArgs {
	return issueArgs{
		key:         fs.String("issue", "", "explain the Jira rules on an issue `KEY` (PAY-12) instead of a pull request"),
		typ:         fs.String("type", "Story", "--issue: the issue `type`"),
		status:      fs.String("status", "To Do", "--issue: the `status` (To Do, In Progress, Done, …)"),
		points:      fs.String("points", "", "--issue: story `points` (empty: not estimated)"),
		labels:      fs.String("labels", "", "--issue: `labels`, comma-separated"),
		priority:    fs.String("priority", "Medium", "--issue: the `priority` name (empty: none set)"),
		description: fs.String("description", "", "--issue: the `description`"),
		created:     fs.String("created", "", "--issue: when it was created, `YYYY-MM-DD` (default: at --at)"),
		sprint:      fs.String("sprint", "", "--issue: the active `sprint` it is in (empty: none)"),
	}
}

// statusCategory guesses Jira's category of a status by its usual names;
// the daemon reads it from Jira.
func statusCategory(status string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "done", "closed", "resolved":
		return "done", true
	case "in progress", "in review", "in development":
		return "indeterminate", false
	}
	return "new", false
}

func explainIssue(a issueArgs, rolesPath, at, format string, stdout, stderr io.Writer, usage func()) int {
	var problems []string
	now := time.Now().UTC()
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			problems = append(problems, "--at must be an RFC3339 time such as 2026-11-02T09:00:00Z")
		}
		now = t
	}
	key := strings.ToUpper(strings.TrimSpace(*a.key))
	project, _, ok := strings.Cut(key, "-")
	if !ok || project == "" {
		problems = append(problems, "--issue must be an issue key such as PAY-12")
	}
	is := model.Issue{Key: key, Project: project, Type: *a.typ, Summary: key, Status: *a.status,
		Description: *a.description, Labels: splitList(*a.labels), Priority: strings.TrimSpace(*a.priority), Created: now}
	is.StatusCategory, is.StatusDone = statusCategory(*a.status)
	if *a.points != "" {
		v, err := strconv.ParseFloat(*a.points, 64)
		if err != nil || v < 0 {
			problems = append(problems, "--points must be a number of at least 0")
		}
		is.StoryPoints = &v
	}
	if *a.created != "" {
		t, err := time.Parse(time.DateOnly, *a.created)
		if err != nil {
			problems = append(problems, "--created must be a date YYYY-MM-DD")
		}
		is.Created = t
	}
	if *a.sprint != "" {
		is.Sprints = []model.Sprint{{ID: 1, Name: *a.sprint, State: "active"}}
	}
	if format != "text" && format != "json" {
		problems = append(problems, "--format must be text or json")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "explain: %s\n", p)
		}
		usage()
		return exitUsage
	}
	var (
		org *roles.Org
		err error
	)
	if rolesPath == "" {
		org, err = roles.ParseAt("roles.yaml (built in)", rolekeeper.RolesYAML, now)
	} else {
		org, err = roles.LoadAt(rolesPath, now)
	}
	if err != nil {
		printProblems(stderr, err)
		return exitFailed
	}
	// Fields a site may lack are assumed present: explain shows what the
	// rules ask for on a site that has them.
	d := rules.EvaluateIssue(org, rules.IssueSnapshot{Issue: is, StoryPointsField: true, PriorityField: true, Load: map[string]int{}, Now: now})
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			fmt.Fprintf(stderr, "explain: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprint(stdout, rules.ExplainIssue(d))
	return exitOK
}
