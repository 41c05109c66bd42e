package jira

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Custom field types that identify fields whatever their id or name.
const (
	customStoryPoints = "com.pyxis.greenhopper.jira:jsw-story-points" // "Story point estimate"
	customFloat       = "com.atlassian.jira.plugin.system.customfieldtypes:float"
	customSprint      = "com.pyxis.greenhopper.jira:gh-sprint"
)

// ProjectMeta is what differs by site and project: field ids and issue
// types. Discovered, never hard-coded.
type ProjectMeta struct {
	Project          string            // project key
	ProjectID        string            // numeric id (version webhooks carry only this)
	StoryPointsField string            // "" when the site has none
	StoryPointsName  string            // its display name
	SprintField      string            // "" when Jira Software is absent
	HasPriority      bool              // the site shows the priority field (an admin may hide it)
	SubtaskTypeID    string            // "" when the project has no sub-task type
	SubtaskTypeName  string            // the site's name for it ("Sub-task", "Subtask", "子任务", …)
	HasSubtasks      bool              //
	IssueTypes       map[string]string // creatable type name → id (also untranslated names)
	StandardTypeIDs  []string          // non-sub-task type ids, in Jira's order
}

// TypeID returns the id of an issue type by name, case-insensitively.
func (m ProjectMeta) TypeID(name string) (string, bool) {
	if id, ok := m.IssueTypes[name]; ok {
		return id, true
	}
	for n, id := range m.IssueTypes {
		if strings.EqualFold(n, name) {
			return id, true
		}
	}
	return "", false
}

type fieldInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Schema struct {
		Type   string `json:"type"`
		Custom string `json:"custom"`
	} `json:"schema"`
}

type createMetaType struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	UntranslatedName string `json:"untranslatedName"`
	Subtask          bool   `json:"subtask"`
}

// Discover reads the site's fields (GET field) and the project's creatable
// issue types (GET issue/createmeta/{project}/issuetypes), and remembers
// the result for decoding the project's issues. The story-points field is
// the jsw-story-points one when present, else a number field named "Story
// Points" or "Story point estimate"; when a site has several, the one on
// the project's Story create screen wins.
func (c *Client) Discover(ctx context.Context, project string) (ProjectMeta, error) {
	project = strings.ToUpper(project)
	fields, resp, err := c.jc.Field.GetListWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ProjectMeta{}, ctx.Err()
		}
		return ProjectMeta{}, c.fromGoJira("GET /rest/api/2/field", resp, err)
	}
	infos := make([]fieldInfo, 0, len(fields))
	for _, f := range fields {
		fi := fieldInfo{ID: f.ID, Name: f.Name}
		fi.Schema.Type, fi.Schema.Custom = f.Schema.Type, f.Schema.Custom
		infos = append(infos, fi)
	}

	var proj struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := c.do(ctx, "GET", "rest/api/2/project/"+url.PathEscape(project), nil, nil, &proj); err != nil {
		return ProjectMeta{}, err
	}
	types, err := c.createMetaTypes(ctx, project)
	if err != nil {
		return ProjectMeta{}, err
	}

	meta := ProjectMeta{Project: project, ProjectID: proj.ID, IssueTypes: map[string]string{}}
	if proj.Key != "" {
		meta.Project = proj.Key
	}
	for _, t := range types {
		meta.IssueTypes[t.Name] = t.ID
		if t.UntranslatedName != "" {
			meta.IssueTypes[t.UntranslatedName] = t.ID
		}
		if t.Subtask {
			if !meta.HasSubtasks {
				meta.HasSubtasks, meta.SubtaskTypeID, meta.SubtaskTypeName = true, t.ID, t.Name
			}
			continue
		}
		meta.StandardTypeIDs = append(meta.StandardTypeIDs, t.ID)
	}
	for _, f := range infos {
		if f.ID == "priority" {
			meta.HasPriority = true
		}
		if f.Schema.Custom == customSprint && meta.SprintField == "" {
			meta.SprintField = f.ID
		}
	}
	cands := storyPointCandidates(infos)
	if len(cands) > 1 {
		if id, ok := meta.TypeID("Story"); ok {
			onScreen, err := c.createMetaFields(ctx, project, id)
			if err != nil {
				return ProjectMeta{}, err
			}
			for i, f := range cands {
				if onScreen[f.ID] {
					cands[0], cands[i] = cands[i], cands[0]
					break
				}
			}
		}
	}
	if len(cands) > 0 {
		meta.StoryPointsField, meta.StoryPointsName = cands[0].ID, cands[0].Name
	}

	c.mu.Lock()
	c.metas[meta.Project] = meta
	c.mu.Unlock()
	return meta, nil
}

// storyPointCandidates lists story-point fields, best first.
func storyPointCandidates(fields []fieldInfo) []fieldInfo {
	var jsw, named []fieldInfo
	for _, f := range fields {
		switch {
		case f.Schema.Custom == customStoryPoints:
			jsw = append(jsw, f)
		case f.Schema.Type == "number" && (f.Schema.Custom == customFloat || f.Schema.Custom == "") &&
			(strings.EqualFold(f.Name, "Story Points") || strings.EqualFold(f.Name, "Story point estimate")):
			named = append(named, f)
		}
	}
	return append(jsw, named...)
}

func (c *Client) createMetaTypes(ctx context.Context, project string) ([]createMetaType, error) {
	var all []createMetaType
	for start := 0; ; {
		var page struct {
			IssueTypes []createMetaType `json:"issueTypes"`
			Values     []createMetaType `json:"values"` // Server/DC spelling
			Total      int              `json:"total"`
		}
		q := url.Values{"startAt": {strconv.Itoa(start)}, "maxResults": {"200"}}
		if err := c.do(ctx, "GET", "rest/api/2/issue/createmeta/"+url.PathEscape(project)+"/issuetypes", q, nil, &page); err != nil {
			return nil, err
		}
		got := append(page.IssueTypes, page.Values...)
		all = append(all, got...)
		start += len(got)
		if len(got) == 0 || start >= page.Total || start >= 1000 {
			return all, nil
		}
	}
}

func (c *Client) createMetaFields(ctx context.Context, project, typeID string) (map[string]bool, error) {
	out := map[string]bool{}
	for start := 0; ; {
		var page struct {
			Fields []struct {
				FieldID string `json:"fieldId"`
			} `json:"fields"`
			Values []struct {
				FieldID string `json:"fieldId"`
			} `json:"values"`
			Total int `json:"total"`
		}
		q := url.Values{"startAt": {strconv.Itoa(start)}, "maxResults": {"200"}}
		if err := c.do(ctx, "GET", "rest/api/2/issue/createmeta/"+url.PathEscape(project)+"/issuetypes/"+url.PathEscape(typeID), q, nil, &page); err != nil {
			return nil, err
		}
		got := append(page.Fields, page.Values...)
		for _, f := range got {
			out[f.FieldID] = true
		}
		start += len(got)
		if len(got) == 0 || start >= page.Total || start >= 1000 {
			return out, nil
		}
	}
}

// Meta returns what Discover found for a project.
func (c *Client) Meta(project string) (ProjectMeta, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.metas[strings.ToUpper(project)]
	return m, ok
}

// idsFor returns the custom field ids to read for a project's issues.
func (c *Client) idsFor(project string) fieldIDs {
	m, _ := c.Meta(project)
	return fieldIDs{storyPoints: m.StoryPointsField, sprint: m.SprintField}
}

// customFields lists every discovered story-point and sprint field id.
func (c *Client) customFields(project string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if m, ok := c.metas[strings.ToUpper(project)]; ok {
		add(m.StoryPointsField)
		add(m.SprintField)
		return out
	}
	for _, m := range c.metas {
		add(m.StoryPointsField)
		add(m.SprintField)
	}
	sort.Strings(out)
	return out
}
