package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

func runExplain(_ context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	fs := newFlags("explain", stderr)
	rolesPath := fs.String("roles", "", "roles `file` (default: the roles.yaml built into the binary)")
	repo := fs.String("repo", "", "repository `WS/SLUG`")
	author := fs.String("author", "", "the pull request's author: Atlassian `account_id`, or a person's handle in roles.yaml")
	files := fs.String("files", "", "changed `paths`, comma-separated")
	format := fs.String("format", "text", "output `format`: text or json")
	reviewers := fs.String("reviewers", "", "reviewers already on the pull request (account ids or handles, comma-separated)")
	approvals := fs.String("approvals", "", "people who approved (account ids or handles, comma-separated)")
	committers := fs.String("commit-authors", "", "people who wrote commits of the pull request besides its author (account ids or handles, comma-separated): never asked, their approvals do not count")
	at := fs.String("at", "", "evaluate at this `RFC3339` time (default now): absences are judged then")
	title := fs.String("title", "", "the pull request's title")
	number := fs.Int("pr", 0, "the pull request's `number`")
	draft := fs.Bool("draft", false, "the pull request is a draft")
	is := issueFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s explain --roles FILE --repo WS/SLUG --author ACCOUNT_ID --files P1,P2,... [flags]\n", programName)
		fmt.Fprintf(stderr, "       %s explain --roles FILE --issue KEY --type TYPE [--status S] [--points N] [--labels L1,L2] [--priority P] [--description TEXT] [--created DATE]\n\n", programName)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	if *is.key != "" {
		return explainIssue(is, *rolesPath, *at, *format, stdout, stderr, fs.Usage)
	}
	var problems []string
	if !strings.Contains(*repo, "/") {
		problems = append(problems, "--repo WS/SLUG is required")
	}
	if *author == "" {
		problems = append(problems, "--author is required")
	}
	if *format != "text" && *format != "json" {
		problems = append(problems, "--format must be text or json")
	}
	now := time.Now().UTC()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			problems = append(problems, "--at must be an RFC3339 time such as 2026-11-02T09:00:00Z")
		}
		now = t
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "explain: %s\n", p)
		}
		fs.Usage()
		return exitUsage
	}

	var (
		org *roles.Org
		err error
	)
	if *rolesPath == "" {
		org, err = roles.ParseAt("roles.yaml (built in)", rolekeeper.RolesYAML, now)
	} else {
		org, err = roles.LoadAt(*rolesPath, now)
	}
	if err != nil {
		printProblems(stderr, err)
		return exitFailed
	}

	snap := rules.PRSnapshot{
		Repository:   strings.ToLower(*repo),
		Number:       *number,
		Title:        *title,
		Author:       model.Actor{AccountID: accountOf(org, *author)},
		Draft:        *draft,
		State:        model.PROpen,
		ChangedFiles: splitList(*files),
		Load:         map[string]int{},
		Now:          now,
	}
	for _, r := range splitList(*reviewers) {
		snap.Reviewers = append(snap.Reviewers, accountOf(org, r))
	}
	for _, c := range splitList(*committers) {
		snap.CommitAuthors = append(snap.CommitAuthors, model.Actor{AccountID: accountOf(org, c)})
	}
	for _, a := range splitList(*approvals) {
		id := accountOf(org, a)
		name := ""
		if p := org.PersonByAccount(id); p != nil {
			name = p.DisplayName()
		}
		snap.Approvals = append(snap.Approvals, model.Approval{AccountID: id, Name: name, State: model.ReviewApproved, At: now})
	}
	d := rules.Evaluate(org, snap)
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			fmt.Fprintf(stderr, "explain: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	text := rules.Explain(d)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	fmt.Fprint(stdout, text)
	return exitOK
}

// accountOf takes an account id, or a person's handle in roles.yaml, and
// returns the account id.
func accountOf(org *roles.Org, s string) string {
	if p := org.Person(s); p != nil && p.AccountID != "" {
		return p.AccountID
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
