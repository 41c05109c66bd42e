package jiratest

import (
	"strconv"
	"strings"
	"time"
)

// Rendering follows Jira Cloud's REST v2 representation (see
// shared/fixtures/jira/api/issue_get_v2__go-atlassian.json and the
// mattermost webhook captures): description is text, users carry
// accountId (no deprecated name/key), statuses carry a statusCategory.

const jiraTime = "2006-01-02T15:04:05.000-0700"

type obj = map[string]any

func (s *Site) base() string { return "http://" + s.host + s.opts.Prefix }

func (s *Site) userJSON(accountID string) any {
	if accountID == "" {
		return nil
	}
	u := s.users[accountID]
	name := accountID
	if u != nil {
		name = u.DisplayName
	}
	return obj{
		"self":        s.base() + "/rest/api/2/user?accountId=" + accountID,
		"accountId":   accountID,
		"displayName": name,
		"active":      true,
		"timeZone":    "Etc/UTC",
		"accountType": "atlassian",
		"avatarUrls":  obj{"48x48": "https://avatar-management.example/initials/" + initials(name) + "-0.png"},
	}
}

func initials(name string) string {
	var b strings.Builder
	for _, w := range strings.Fields(name) {
		b.WriteString(strings.ToUpper(w[:1]))
	}
	return b.String()
}

func (s *Site) statusJSON(status string) obj {
	id, key, name := statusCategory(status)
	return obj{
		"self":        s.base() + "/rest/api/2/status/" + strconv.Itoa(10000+id),
		"description": "",
		"iconUrl":     s.base() + "/",
		"name":        status,
		"id":          strconv.Itoa(10000 + id),
		"statusCategory": obj{
			"self": s.base() + "/rest/api/2/statuscategory/" + strconv.Itoa(id),
			"id":   id, "key": key, "colorName": map[string]string{"new": "blue-gray", "indeterminate": "yellow", "done": "green"}[key],
			"name": name,
		},
	}
}

func (s *Site) typeJSON(t issueType) obj {
	return obj{
		"self":           s.base() + "/rest/api/2/issuetype/" + t.ID,
		"id":             t.ID,
		"description":    t.Description,
		"iconUrl":        s.base() + "/rest/api/2/universal_avatar/view/type/issuetype/avatar/10315?size=medium",
		"name":           t.Name,
		"subtask":        t.Subtask,
		"avatarId":       10315,
		"hierarchyLevel": t.Hierarchy,
	}
}

func (s *Site) versionJSON(v *version) obj {
	o := obj{
		"self":        s.base() + "/rest/api/2/version/" + v.ID,
		"id":          v.ID,
		"description": v.Description,
		"name":        v.Name,
		"archived":    false,
		"released":    v.Released,
	}
	if v.ReleaseDate != "" {
		o["releaseDate"] = v.ReleaseDate
	}
	return o
}

// refJSON is the short form Jira nests for sub-tasks, parents and links.
func (s *Site) refJSON(is *issue) obj {
	return obj{
		"id":   is.ID,
		"key":  is.Key,
		"self": s.base() + "/rest/api/2/issue/" + is.ID,
		"fields": obj{
			"summary":   is.Summary,
			"status":    s.statusJSON(is.Status),
			"priority":  obj{"self": s.base() + "/rest/api/2/priority/3", "iconUrl": s.base() + "/images/icons/priorities/medium.svg", "name": "Medium", "id": "3"},
			"issuetype": s.typeJSON(is.Type),
		},
	}
}

func (s *Site) linkTypeJSON(t linkType) obj {
	return obj{"id": t.ID, "name": t.Name, "inward": t.Inward, "outward": t.Outward,
		"self": s.base() + "/rest/api/2/issueLinkType/" + t.ID}
}

// issueJSON renders an issue with the requested fields (nil: all).
func (s *Site) issueJSON(is *issue, want func(string) bool) obj {
	if want == nil {
		want = func(string) bool { return true }
	}
	p := s.projects[is.Project]
	f := obj{}
	set := func(name string, v func() any) {
		if want(name) {
			f[name] = v()
		}
	}
	set("summary", func() any { return is.Summary })
	set("description", func() any {
		if is.Description == "" {
			return nil
		}
		return is.Description
	})
	set("issuetype", func() any { return s.typeJSON(is.Type) })
	set("project", func() any {
		return obj{"self": s.base() + "/rest/api/2/project/" + p.ID, "id": p.ID, "key": p.Key, "name": p.Name,
			"projectTypeKey": "software", "simplified": false}
	})
	set("status", func() any { return s.statusJSON(is.Status) })
	set("assignee", func() any { return s.userJSON(is.Assignee) })
	set("reporter", func() any { return s.userJSON(is.Reporter) })
	set("creator", func() any { return s.userJSON(is.Reporter) })
	set("fixVersions", func() any {
		out := []any{}
		for _, id := range is.FixVersions {
			if v := s.versions[id]; v != nil {
				out = append(out, s.versionJSON(v))
			}
		}
		return out
	})
	set("labels", func() any {
		if is.Labels == nil {
			return []string{}
		}
		return is.Labels
	})
	set("parent", func() any {
		if par := s.issues[is.Parent]; par != nil {
			return s.refJSON(par)
		}
		return nil
	})
	set("subtasks", func() any {
		out := []any{}
		for _, st := range s.subtasksOf(is.Key) {
			out = append(out, s.refJSON(st))
		}
		return out
	})
	set("issuelinks", func() any {
		out := []any{}
		for _, l := range s.links {
			switch is.Key {
			case l.Inward:
				if o := s.issues[l.Outward]; o != nil {
					out = append(out, obj{"id": l.ID, "self": s.base() + "/rest/api/2/issueLink/" + l.ID,
						"type": s.linkTypeJSON(l.Type), "outwardIssue": s.refJSON(o)})
				}
			case l.Outward:
				if in := s.issues[l.Inward]; in != nil {
					out = append(out, obj{"id": l.ID, "self": s.base() + "/rest/api/2/issueLink/" + l.ID,
						"type": s.linkTypeJSON(l.Type), "inwardIssue": s.refJSON(in)})
				}
			}
		}
		return out
	})
	set("created", func() any { return is.Created.Format(jiraTime) })
	set("updated", func() any { return is.Updated.Format(jiraTime) })
	set("resolution", func() any {
		if _, key, _ := statusCategory(is.Status); key == "done" {
			return obj{"self": s.base() + "/rest/api/2/resolution/10000", "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"}
		}
		return nil
	})
	if !s.opts.NoPriority {
		set("priority", func() any {
			if is.Priority == "" {
				return nil
			}
			id := priorities[is.Priority]
			return obj{"self": s.base() + "/rest/api/2/priority/" + id, "iconUrl": s.base() + "/images/icons/priorities/" + strings.ToLower(is.Priority) + ".svg", "name": is.Priority, "id": id}
		})
	}
	if !s.opts.NoStoryPoints {
		set(s.opts.StoryPointsField, func() any { return numberOrNil(is.StoryPoints) })
		set(s.opts.FloatPointsField, func() any { return numberOrNil(is.FloatPoints) })
	}
	set(s.opts.SprintField, func() any {
		if len(is.Sprints) == 0 {
			return nil
		}
		out := []any{}
		for _, id := range is.Sprints {
			if sp := s.sprints[id]; sp != nil {
				out = append(out, obj{"id": sp.ID, "name": sp.Name, "state": sp.State, "boardId": 1, "goal": "",
					"startDate": s.opts.Now().UTC().AddDate(0, 0, -7).Format(time.RFC3339)})
			}
		}
		return out
	})
	return obj{"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
		"id": is.ID, "self": s.base() + "/rest/api/2/issue/" + is.ID, "key": is.Key, "fields": f}
}

func numberOrNil(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func (s *Site) commentJSON(issueID string, c *comment) obj {
	return obj{
		"self":         s.base() + "/rest/api/2/issue/" + issueID + "/comment/" + c.ID,
		"id":           c.ID,
		"author":       s.userJSON(c.Author),
		"body":         c.Body,
		"updateAuthor": s.userJSON(c.Author),
		"created":      c.Created.Format(jiraTime),
		"updated":      c.Created.Format(jiraTime),
		"jsdPublic":    true,
	}
}

// fieldsJSON is GET /rest/api/2/field: system fields and the Jira
// Software custom fields, shaped as fields_list__go-atlassian.json.
func (s *Site) fieldsJSON() []any {
	sys := func(id, name, typ string, clause ...string) obj {
		o := obj{"id": id, "key": id, "name": name, "custom": false, "orderable": true, "navigable": true, "searchable": true,
			"clauseNames": append([]string{id}, clause...), "schema": obj{"type": typ, "system": id}}
		return o
	}
	custom := func(id, name, typ, custom string, clause ...string) obj {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "customfield_"))
		return obj{"id": id, "key": id, "name": name, "untranslatedName": name, "custom": true, "orderable": true, "navigable": true,
			"searchable": true, "clauseNames": append([]string{"cf[" + strconv.Itoa(n) + "]", name}, clause...),
			"schema": obj{"type": typ, "custom": custom, "customId": n}}
	}
	out := []any{
		sys("summary", "Summary", "string"),
		sys("issuetype", "Issue Type", "issuetype", "type"),
		obj{"id": "parent", "key": "parent", "name": "Parent", "custom": false, "orderable": false, "navigable": true, "searchable": false, "clauseNames": []string{"parent"}},
		sys("project", "Project", "project"),
		obj{"id": "fixVersions", "key": "fixVersions", "name": "Fix versions", "custom": false, "orderable": true, "navigable": true, "searchable": true,
			"clauseNames": []string{"fixVersion"}, "schema": obj{"type": "array", "items": "version", "system": "fixVersions"}},
		sys("status", "Status", "status"),
		sys("priority", "Priority", "priority"),
		sys("assignee", "Assignee", "user"),
		sys("reporter", "Reporter", "user"),
		sys("description", "Description", "string"),
		obj{"id": "labels", "key": "labels", "name": "Labels", "custom": false, "orderable": true, "navigable": true, "searchable": true,
			"clauseNames": []string{"labels"}, "schema": obj{"type": "array", "items": "string", "system": "labels"}},
		obj{"id": "subtasks", "key": "subtasks", "name": "Sub-tasks", "custom": false, "orderable": false, "navigable": true, "searchable": false,
			"clauseNames": []string{"subtasks"}, "schema": obj{"type": "array", "items": "issuelinks", "system": "subtasks"}},
		obj{"id": "issuelinks", "key": "issuelinks", "name": "Linked Issues", "custom": false, "orderable": true, "navigable": true, "searchable": true,
			"clauseNames": []string{"issueLink"}, "schema": obj{"type": "array", "items": "issuelinks", "system": "issuelinks"}},
		sys("created", "Created", "datetime", "createdDate"),
		sys("updated", "Updated", "datetime", "updatedDate"),
		custom(s.opts.SprintField, "Sprint", "array", "com.pyxis.greenhopper.jira:gh-sprint", "sprint"),
		custom("customfield_10014", "Epic Link", "any", "com.pyxis.greenhopper.jira:gh-epic-link"),
		custom("customfield_10019", "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
	}
	out[len(out)-3].(obj)["schema"].(obj)["items"] = "json"
	if s.opts.NoPriority {
		for i, f := range out {
			if f.(obj)["id"] == "priority" {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
	}
	if !s.opts.NoStoryPoints {
		// Both fields, as on many Cloud sites (fields_list__go-atlassian.json).
		out = append(out,
			custom(s.opts.FloatPointsField, "Story Points", "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
			custom(s.opts.StoryPointsField, "Story point estimate", "number", "com.pyxis.greenhopper.jira:jsw-story-points"))
	}
	return out
}
