package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// WriteFiles writes the report in every format into dir as
// rolekeeper-report-<week>.<ext>, each through a temporary file and a rename
// so a reader never sees half a file. It returns the paths written.
func WriteFiles(dir string, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	var paths []string
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Render(&buf, r, f); err != nil {
			return paths, err
		}
		path := filepath.Join(dir, "rolekeeper-report-"+r.Week+"."+f)
		tmp, err := os.CreateTemp(dir, ".report-*")
		if err != nil {
			return paths, err
		}
		if _, err := tmp.Write(buf.Bytes()); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return paths, err
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return paths, err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// IssueFiler files the report as a Jira issue (the jira client, adapted).
type IssueFiler interface {
	CreateReportIssue(ctx context.Context, project, summary, body, assigneeAccountID string) (key string, err error)
	AddAttachment(ctx context.Context, key, filename string, data []byte) error
}

// Marks remembers which weeks were already delivered, so a re-run of the
// weekly job files no second issue.
type Marks interface {
	PutIfAbsent(ctx context.Context, key, value string) (bool, error)
	Get(ctx context.Context, key string) (string, bool, error)
	Set(ctx context.Context, key, value string) error
}

// Recipients returns the people holding a report rule's role, not away at
// now, with the rule's Jira project. The first is the assignee; the others
// are named in the issue.
func Recipients(org *roles.Org, now time.Time) (project string, people []*roles.Person) {
	for _, rule := range org.RulesOfKind(roles.KindReport) {
		if project == "" {
			project = rule.Project
		}
		for _, p := range org.Holders(rule.Role, "") {
			if away, _ := p.AwayAt(now); away || p.AccountID == "" {
				continue
			}
			dup := false
			for _, q := range people {
				dup = dup || q.ID == p.ID
			}
			if !dup {
				people = append(people, p)
			}
		}
	}
	return project, people
}

// DeliverToJira files the week's report as one issue in project (the
// configured project, or the report rule's), assigned to the first
// recipient: the verdict, the signed link (when link.URL is set) and what
// needs attention in the body, in Jira wiki markup, and the HTML attached.
// It does nothing and returns "" when no project is known. Delivery is
// recorded under "report:jira:<week>" so a second run returns the existing
// key.
func DeliverToJira(ctx context.Context, filer IssueFiler, marks Marks, org *roles.Org, r *Report, project string, now time.Time, link Link) (string, error) {
	ruleProject, people := Recipients(org, now)
	if project == "" {
		project = ruleProject
	}
	if project == "" {
		return "", nil
	}
	markKey := "report:jira:" + r.Week
	if key, ok, err := marks.Get(ctx, markKey); err != nil {
		return "", err
	} else if ok && key != "" && key != "pending" {
		return key, nil
	}
	// Claim the week before filing: two runs racing file at most one issue.
	claimed, err := marks.PutIfAbsent(ctx, markKey, "pending")
	if err != nil {
		return "", err
	}
	if !claimed {
		if key, _, err := marks.Get(ctx, markKey); err != nil || key != "pending" {
			return key, err
		}
		// A previous run died between claiming and filing: file it now.
	}
	var wiki bytes.Buffer
	if err := JiraWiki(&wiki, r, link); err != nil {
		return "", err
	}
	body := wiki.String()
	assignee := ""
	if len(people) > 0 {
		assignee = people[0].AccountID
		names := make([]string, len(people))
		for i, p := range people {
			names[i] = "[~accountid:" + p.AccountID + "]"
		}
		body = "For " + strings.Join(names, ", ") + " (report rule).\n\n" + body
	}
	summary := fmt.Sprintf("Compliance report %s: %d held, %d violated, %d break-glass", r.Week, r.Summary.Held, r.Summary.Violated, r.Summary.BreakGlass)
	if e := r.Evidence; e != nil { // evidence (h6): the witness in the issue's title too (the body has the full head)
		summary += fmt.Sprintf(" · evidence %d–%d sha256:%.12s", e.FirstSeq, e.LastSeq, e.Head)
	}
	key, err := filer.CreateReportIssue(ctx, project, summary, body, assignee)
	if err != nil {
		return "", err
	}
	if err := marks.Set(ctx, markKey, key); err != nil {
		return key, err
	}
	var page bytes.Buffer
	if err := HTML(&page, r); err != nil {
		return key, err
	}
	if err := filer.AddAttachment(ctx, key, "rolekeeper-report-"+r.Week+".html", page.Bytes()); err != nil {
		return key, fmt.Errorf("attach html to %s: %w", key, err)
	}
	return key, nil
}

// Handler serves GET /api/v1/reports/weekly?week=YYYY-Www&format=json|md|html|csv
// (default: the last complete week, JSON).
func Handler(src Source, org func() *roles.Org, loc *time.Location, publicURL string, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		format := q.Get("format")
		if format == "" {
			format = "json"
		}
		if ContentType(format) == "application/octet-stream" {
			httpError(w, http.StatusBadRequest, "format must be one of md, html, json, csv")
			return
		}
		t := now()
		week := LastComplete(t, loc)
		if s := q.Get("week"); s != "" {
			var err error
			if week, err = ParseWeek(s, loc); err != nil {
				httpError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		r, err := Build(req.Context(), src, org(), week, Options{Now: t, PublicURL: publicURL})
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "could not build the report: "+err.Error())
			return
		}
		var buf bytes.Buffer
		if err := Render(&buf, r, format); err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", ContentType(format))
		if format == "csv" {
			w.Header().Set("Content-Disposition", `attachment; filename="rolekeeper-report-`+r.Week+`.csv"`)
		}
		w.Write(buf.Bytes())
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
