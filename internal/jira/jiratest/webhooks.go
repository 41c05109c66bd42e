package jiratest

import (
	"encoding/json"
	"strconv"

	"github.com/reloadly/rolekeeper/internal/model"
)

// IssueEventBody builds a webhook body for an issue as it is now, shaped
// like Jira Cloud's deliveries (mattermost captures): timestamp,
// webhookEvent, issue_event_type_name, user, issue (v2 fields) and, for
// created and updated, changelog.items. webhookEvent is
// "jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
// "comment_created" (then the last comment is sent, and no user, as Jira
// does).
func (s *Site) IssueEventBody(webhookEvent, key string, changelog ...model.ChangeItem) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issues[key]
	if is == nil {
		panic("jiratest: no issue " + key)
	}
	body := obj{
		"timestamp":    s.opts.Now().UnixMilli(),
		"webhookEvent": webhookEvent,
	}
	switch webhookEvent {
	case "jira:issue_created":
		body["issue_event_type_name"] = "issue_created"
	case "jira:issue_updated":
		// Jira names the same change differently (issue_updated,
		// issue_generic, issue_assigned): readers go by the changelog.
		body["issue_event_type_name"] = "issue_generic"
	}
	if webhookEvent == "comment_created" || webhookEvent == "comment_updated" {
		cs := s.comments[key]
		if len(cs) > 0 {
			body["comment"] = s.commentJSON(is.ID, cs[len(cs)-1])
		}
		// Comment events carry a trimmed issue.
		body["issue"] = s.issueJSON(is, fieldFilter("summary,issuetype,project,assignee,priority,status"))
	} else {
		u := s.userJSON(s.me.AccountID)
		body["user"] = u
		body["issue"] = s.issueJSON(is, nil)
	}
	if webhookEvent == "jira:issue_created" || webhookEvent == "jira:issue_updated" {
		items := []any{}
		for _, c := range changelog {
			fieldType := "jira"
			if len(c.FieldID) > 12 && c.FieldID[:12] == "customfield_" {
				fieldType = "custom"
			}
			items = append(items, obj{"field": c.Field, "fieldtype": fieldType, "fieldId": c.FieldID,
				"from": nullable(c.From), "fromString": nullable(c.FromString), "to": nullable(c.To), "toString": nullable(c.ToString)})
		}
		s.nextID++
		body["changelog"] = obj{"id": strconv.Itoa(s.nextID), "items": items}
	}
	b, _ := json.Marshal(body)
	return b
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Release marks a version released on a day ("2026-11-03") and returns the
// jira:version_released body Jira sends: only the version, with the
// numeric projectId and no project key.
func (s *Site) Release(versionID, day string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.versions[versionID]
	if v == nil {
		panic("jiratest: no version " + versionID)
	}
	v.Released, v.ReleaseDate = true, day
	return s.versionBody(v)
}

// VersionReleasedBody is the jira:version_released body for a version as
// it is now.
func (s *Site) VersionReleasedBody(versionID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.versions[versionID]
	if v == nil {
		panic("jiratest: no version " + versionID)
	}
	return s.versionBody(v)
}

func (s *Site) versionBody(v *version) []byte {
	o := s.versionJSON(v)
	o["overdue"] = false
	pid, _ := strconv.Atoi(s.projects[v.ProjectKey].ID)
	o["projectId"] = pid
	b, _ := json.Marshal(obj{"timestamp": s.opts.Now().UnixMilli(), "webhookEvent": "jira:version_released", "version": o})
	return b
}

// StartSprint makes a sprint active and returns the sprint_started body.
func (s *Site) StartSprint(id int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.sprints[id]
	if sp == nil {
		panic("jiratest: no sprint " + strconv.Itoa(id))
	}
	sp.State = "active"
	return s.sprintBody("sprint_started", sp)
}

// SprintEventBody is a sprint webhook body ("sprint_started",
// "sprint_updated", …) for a sprint as it is now. No captured sprint
// delivery exists in the fixtures: the shape is the one Atlassian
// documents, the sprint object as GET /rest/agile/1.0/sprint/{id} answers
// it (fixture agile_sprint_get__go-atlassian.json).
func (s *Site) SprintEventBody(webhookEvent string, id int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.sprints[id]
	if sp == nil {
		panic("jiratest: no sprint " + strconv.Itoa(id))
	}
	return s.sprintBody(webhookEvent, sp)
}

func (s *Site) sprintBody(webhookEvent string, sp *sprint) []byte {
	start := s.opts.Now().UTC()
	o := obj{"id": sp.ID, "self": s.base() + "/rest/agile/1.0/sprint/" + strconv.Itoa(sp.ID), "state": sp.State,
		"name": sp.Name, "startDate": start.Format("2006-01-02T15:04:05.000Z"),
		"endDate": start.AddDate(0, 0, 14).Format("2006-01-02T15:04:05.000Z"), "originBoardId": 1, "goal": ""}
	b, _ := json.Marshal(obj{"timestamp": s.opts.Now().UnixMilli(), "webhookEvent": webhookEvent, "sprint": o})
	return b
}
