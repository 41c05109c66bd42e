package jira

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// The REST v2 representation of an issue, shared by webhook bodies and API
// answers, so both sides are read by one decoder. Only what rolekeeper uses
// is declared; custom fields stay raw until the discovered ids say which
// is which.

type rawUser struct {
	AccountID   string `json:"accountId"`
	Name        string `json:"name"` // deprecated (2018-2019 payloads)
	Key         string `json:"key"`  // deprecated
	DisplayName string `json:"displayName"`
}

func (u *rawUser) actor() *model.Actor {
	if u == nil || (u.AccountID == "" && u.Name == "" && u.Key == "" && u.DisplayName == "") {
		return nil
	}
	a := &model.Actor{AccountID: u.AccountID, DisplayName: u.DisplayName}
	// Without an account id the deprecated username is the only handle:
	// kept as Nickname so that nothing mistakes it for an account id.
	if u.AccountID == "" {
		a.Nickname = u.Name
		if a.Nickname == "" {
			a.Nickname = u.Key
		}
	}
	return a
}

type rawStatus struct {
	Name           string `json:"name"`
	StatusCategory struct {
		Key string `json:"key"`
	} `json:"statusCategory"`
}

func (s *rawStatus) done() bool { return s != nil && s.StatusCategory.Key == "done" }

type rawIssueType struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Subtask bool   `json:"subtask"`
}

type rawVersion struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Released    bool        `json:"released"`
	ReleaseDate string      `json:"releaseDate"`
	ProjectID   json.Number `json:"projectId"`
}

func (v rawVersion) model(project string) model.Version {
	out := model.Version{ID: v.ID, Name: v.Name, Project: project, ProjectID: v.ProjectID.String(), Released: v.Released}
	if d, err := time.Parse("2006-01-02", v.ReleaseDate); err == nil {
		out.ReleaseDate = d
	}
	return out
}

// rawRef is a sub-task or the far side of a link: {id,key,fields{summary,status,issuetype}}.
type rawRef struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Fields struct {
		Summary   string        `json:"summary"`
		Status    *rawStatus    `json:"status"`
		IssueType *rawIssueType `json:"issuetype"`
	} `json:"fields"`
}

func (r *rawRef) ref() model.IssueRef {
	out := model.IssueRef{Key: r.Key, Summary: r.Fields.Summary}
	if r.Fields.Status != nil {
		out.Status = r.Fields.Status.Name
		out.StatusDone = r.Fields.Status.done()
	}
	if r.Fields.IssueType != nil {
		out.Type = r.Fields.IssueType.Name
	}
	return out
}

type rawLink struct {
	Type struct {
		Name    string `json:"name"`
		Inward  string `json:"inward"`
		Outward string `json:"outward"`
	} `json:"type"`
	InwardIssue  *rawRef `json:"inwardIssue"`
	OutwardIssue *rawRef `json:"outwardIssue"`
}

type rawFields struct {
	Summary     string          `json:"summary"`
	Description json.RawMessage `json:"description"` // a string in v2; ADF (object) in v3
	IssueType   *rawIssueType   `json:"issuetype"`
	Project     *struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	} `json:"project"`
	Status   *rawStatus `json:"status"`
	Priority *struct {
		Name string `json:"name"`
	} `json:"priority"`
	Assignee    *rawUser     `json:"assignee"`
	Reporter    *rawUser     `json:"reporter"`
	FixVersions []rawVersion `json:"fixVersions"`
	Labels      []string     `json:"labels"`
	Parent      *rawRef      `json:"parent"`
	Subtasks    []rawRef     `json:"subtasks"`
	IssueLinks  []rawLink    `json:"issuelinks"`
	Created     string       `json:"created"`
	Updated     string       `json:"updated"`
}

type rawIssue struct {
	ID     string          `json:"id"`
	Key    string          `json:"key"`
	Fields json.RawMessage `json:"fields"`
}

// fieldIDs says which custom fields hold story points and sprints.
type fieldIDs struct {
	storyPoints string
	sprint      string
}

// decodeIssue turns a v2 issue into a model.Issue. browse is the site URL
// used for the browse link ("" for none).
func decodeIssue(ri *rawIssue, ids fieldIDs, browse string) (model.Issue, error) {
	var f rawFields
	var custom map[string]json.RawMessage
	if len(ri.Fields) > 0 && string(ri.Fields) != "null" {
		if err := json.Unmarshal(ri.Fields, &f); err != nil {
			return model.Issue{}, err
		}
		// Custom fields are read by the ids discovered for the site.
		if ids.storyPoints != "" || ids.sprint != "" {
			if err := json.Unmarshal(ri.Fields, &custom); err != nil {
				return model.Issue{}, err
			}
		}
	}
	is := model.Issue{
		ID:          ri.ID,
		Key:         ri.Key,
		Summary:     f.Summary,
		Description: descriptionText(f.Description),
		Labels:      f.Labels,
		Assignee:    f.Assignee.actor(),
		Reporter:    f.Reporter.actor(),
		Created:     parseTime(f.Created),
		Updated:     parseTime(f.Updated),
	}
	if f.Project != nil {
		is.Project = f.Project.Key
	}
	if is.Project == "" {
		is.Project = ProjectOfKey(ri.Key)
	}
	if f.IssueType != nil {
		is.Type, is.TypeID, is.Subtask = f.IssueType.Name, f.IssueType.ID, f.IssueType.Subtask
	}
	if f.Status != nil {
		is.Status, is.StatusDone, is.StatusCategory = f.Status.Name, f.Status.done(), f.Status.StatusCategory.Key
	}
	if f.Priority != nil {
		is.Priority = f.Priority.Name
	}
	for _, v := range f.FixVersions {
		is.FixVersions = append(is.FixVersions, v.model(is.Project))
	}
	if f.Parent != nil {
		is.Parent = f.Parent.Key
	}
	for i := range f.Subtasks {
		is.Subtasks = append(is.Subtasks, f.Subtasks[i].ref())
	}
	for _, l := range f.IssueLinks {
		switch {
		case l.OutwardIssue != nil && l.OutwardIssue.Key != "":
			r := l.OutwardIssue.ref()
			r.LinkType = l.Type.Outward
			is.Links = append(is.Links, r)
		case l.InwardIssue != nil && l.InwardIssue.Key != "":
			r := l.InwardIssue.ref()
			r.LinkType = l.Type.Inward
			is.Links = append(is.Links, r)
		}
	}
	if ids.storyPoints != "" {
		is.StoryPoints = number(custom[ids.storyPoints])
	}
	if ids.sprint != "" {
		is.Sprints = sprints(custom[ids.sprint])
	}
	if browse != "" && is.Key != "" {
		is.URL = strings.TrimRight(browse, "/") + "/browse/" + is.Key
	}
	return is, nil
}

// ProjectOfKey returns the project part of an issue key ("PAY" of "PAY-12").
func ProjectOfKey(key string) string {
	if i := strings.LastIndexByte(key, '-'); i > 0 {
		return key[:i]
	}
	return ""
}

func descriptionText(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return "" // null, or ADF from a v3 answer: not text
}

func number(raw json.RawMessage) *float64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return &f
	}
	var s string // some payloads carry numbers as strings
	if json.Unmarshal(raw, &s) == nil {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return &f
		}
	}
	return nil
}

// legacySprint matches the toString() form older sites return:
// "com.atlassian.greenhopper.service.sprint.Sprint@1a[id=3,rapidViewId=1,state=ACTIVE,name=Sprint 3,...]".
var legacySprint = regexp.MustCompile(`id=(\d+),.*?state=([A-Z]+),name=([^,\]]*)`)

func sprints(raw json.RawMessage) []model.Sprint {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var objs []struct {
		ID    int    `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(raw, &objs); err == nil {
		out := make([]model.Sprint, 0, len(objs))
		for _, o := range objs {
			out = append(out, model.Sprint{ID: o.ID, Name: o.Name, State: strings.ToLower(o.State)})
		}
		return out
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		var out []model.Sprint
		for _, s := range strs {
			if m := legacySprint.FindStringSubmatch(s); m != nil {
				id, _ := strconv.Atoi(m[1])
				out = append(out, model.Sprint{ID: id, Name: m[3], State: strings.ToLower(m[2])})
			}
		}
		return out
	}
	return nil
}

// parseTime reads Jira's "2019-02-15T19:01:52.971-0800" (and RFC 3339).
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
