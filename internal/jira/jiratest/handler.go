package jiratest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// ServeHTTP answers the REST v2 endpoints rolekeeper uses.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	path := strings.TrimPrefix(r.URL.Path, s.opts.Prefix)
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.host = r.Host
	endpoint := endpointOf(r.Method, path)
	defer func() {
		b := string(body)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			b = "(multipart)"
		}
		s.calls = append(s.calls, Call{Method: r.Method, Path: path, Query: r.URL.RawQuery, Body: b, Status: rec.status, Endpoint: endpoint})
	}()

	if !strings.HasPrefix(r.URL.Path, s.opts.Prefix+"/") {
		writeErr(rec, http.StatusNotFound, "Not found: "+r.URL.Path)
		return
	}
	if f, ok := s.takeFailure(endpoint); ok && f.after {
		if r.Header.Get("Authorization") != "" {
			s.route(&recorder{ResponseWriter: discard{header: http.Header{}}, status: http.StatusOK}, r, path, body)
		}
		if f.status == 0 {
			rec.status = 0
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		writeErr(rec, f.status, http.StatusText(f.status))
		return
	} else if ok {
		if f.retryAfter != "" {
			rec.Header().Set("Retry-After", f.retryAfter)
		}
		writeErr(rec, f.status, http.StatusText(f.status))
		return
	}
	if r.Header.Get("Authorization") == "" {
		writeErr(rec, http.StatusUnauthorized, "You are not authenticated. Authentication required to perform this operation.")
		return
	}
	s.route(rec, r, path, body)
}

// discard is the writer of a request whose answer is replaced.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// endpointOf names a request without ids, as the client's metrics do.
func endpointOf(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := 1; i < len(segs); i++ {
		switch segs[i-1] {
		case "issue":
			if segs[i] != "createmeta" {
				segs[i] = "{key}"
			}
		case "createmeta", "project":
			segs[i] = "{project}"
		case "issuetypes", "comment", "version":
			segs[i] = "{id}"
		}
	}
	return method + " /" + strings.Join(segs, "/")
}

func (s *Site) route(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) < 3 || segs[0] != "rest" || segs[1] != "api" {
		writeErr(w, http.StatusNotFound, "Not found")
		return
	}
	if segs[2] != "2" {
		// Only the v2 representation is served: v3 answers ADF, which the
		// client must not ask for.
		writeErr(w, http.StatusNotFound, "This fake serves /rest/api/2 only")
		return
	}
	rest := segs[3:]
	m := r.Method
	switch {
	case m == "GET" && match(rest, "field"):
		writeJSON(w, http.StatusOK, s.fieldsJSON())
	case m == "GET" && match(rest, "myself"):
		u := s.userJSON(s.me.AccountID).(obj)
		u["emailAddress"] = s.me.Email
		u["locale"] = "en_US"
		writeJSON(w, http.StatusOK, u)
	case m == "GET" && match(rest, "project", "*"):
		s.getProject(w, rest[1])
	case m == "GET" && match(rest, "project", "*", "versions"):
		s.getVersions(w, rest[1])
	case m == "GET" && match(rest, "issue", "createmeta", "*", "issuetypes"):
		s.createMetaTypes(w, r, rest[2])
	case m == "GET" && match(rest, "issue", "createmeta", "*", "issuetypes", "*"):
		s.createMetaFields(w, r, rest[2], rest[4])
	case m == "POST" && match(rest, "issue"):
		s.createIssue(w, body)
	case m == "GET" && match(rest, "issue", "*"):
		s.getIssue(w, r, rest[1])
	case m == "GET" && match(rest, "issue", "*", "comment"):
		s.listComments(w, r, rest[1])
	case m == "POST" && match(rest, "issue", "*", "comment"):
		s.addComment(w, rest[1], body)
	case m == "POST" && match(rest, "issue", "*", "attachments"):
		s.addAttachment(w, r, rest[1], body)
	case m == "POST" && match(rest, "issueLink"):
		s.addLink(w, body)
	case (m == "GET" || m == "POST") && match(rest, "search", "jql"):
		s.search(w, r, body)
	case match(rest, "search"):
		writeErr(w, http.StatusGone, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
	default:
		writeErr(w, http.StatusNotFound, "No route for "+m+" "+path)
	}
}

func match(segs []string, pattern ...string) bool {
	if len(segs) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != segs[i] {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers Jira's ErrorCollection.
func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, obj{"errorMessages": []string{msg}, "errors": obj{}})
}

func writeFieldErrs(w http.ResponseWriter, errs map[string]string) {
	writeJSON(w, http.StatusBadRequest, obj{"errorMessages": []string{}, "errors": errs})
}

func (s *Site) lookup(idOrKey string) *issue {
	if is := s.issues[strings.ToUpper(idOrKey)]; is != nil {
		return is
	}
	return s.issues[s.issueByID[idOrKey]]
}

func (s *Site) getProject(w http.ResponseWriter, key string) {
	p := s.projectByIDOrKey(key)
	if p == nil {
		writeErr(w, http.StatusNotFound, "No project could be found with key '"+key+"'.")
		return
	}
	types := []any{}
	for _, t := range p.Types {
		types = append(types, s.typeJSON(t))
	}
	writeJSON(w, http.StatusOK, obj{
		"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
		"self":   s.base() + "/rest/api/2/project/" + p.ID, "id": p.ID, "key": p.Key, "name": p.Name,
		"description": "", "issueTypes": types, "assigneeType": "UNASSIGNED", "projectTypeKey": "software",
		"simplified": false, "style": "classic", "isPrivate": false,
	})
}

func (s *Site) projectByIDOrKey(k string) *project {
	if p := s.projects[strings.ToUpper(k)]; p != nil {
		return p
	}
	for _, p := range s.projects {
		if p.ID == k {
			return p
		}
	}
	return nil
}

func (s *Site) getVersions(w http.ResponseWriter, key string) {
	p := s.projectByIDOrKey(key)
	if p == nil {
		writeErr(w, http.StatusNotFound, "No project could be found with key '"+key+"'.")
		return
	}
	out := []any{}
	for _, id := range sortedIDs(s.versions) {
		v := s.versions[id]
		if v.ProjectKey != p.Key {
			continue
		}
		o := s.versionJSON(v)
		o["overdue"] = false
		pid, _ := strconv.Atoi(p.ID)
		o["projectId"] = pid
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, out)
}

func sortedIDs(m map[string]*version) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	// ids are numeric strings of equal length in this fake
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && less(ids[j], ids[j-1]); j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

func less(a, b string) bool {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x < y
}

func pageParams(r *http.Request, def int) (start, max int) {
	start, _ = strconv.Atoi(r.URL.Query().Get("startAt"))
	max, _ = strconv.Atoi(r.URL.Query().Get("maxResults"))
	if max <= 0 || max > def {
		max = def
	}
	return start, max
}

// createMetaTypes is GET issue/createmeta/{project}/issuetypes
// (PageOfCreateMetaIssueTypes: issueTypes, maxResults, startAt, total).
func (s *Site) createMetaTypes(w http.ResponseWriter, r *http.Request, key string) {
	p := s.projectByIDOrKey(key)
	if p == nil {
		writeErr(w, http.StatusNotFound, "No project could be found with key '"+key+"'.")
		return
	}
	start, max := pageParams(r, 50)
	var page []any
	for i := start; i < len(p.Types) && len(page) < max; i++ {
		t := s.typeJSON(p.Types[i])
		t["untranslatedName"] = p.Types[i].Name
		page = append(page, t)
	}
	writeJSON(w, http.StatusOK, obj{"issueTypes": nonNil(page), "maxResults": max, "startAt": start, "total": len(p.Types)})
}

// createMetaFields is GET issue/createmeta/{project}/issuetypes/{id}
// (PageOfCreateMetaIssueTypeWithField: fields, maxResults, startAt, total).
func (s *Site) createMetaFields(w http.ResponseWriter, r *http.Request, key, typeID string) {
	p := s.projectByIDOrKey(key)
	if p == nil {
		writeErr(w, http.StatusNotFound, "No project could be found with key '"+key+"'.")
		return
	}
	t, ok := p.typeByID(typeID)
	if !ok {
		writeErr(w, http.StatusNotFound, "Issue type with id '"+typeID+"' not found.")
		return
	}
	field := func(id, name string, required bool, schema obj) obj {
		return obj{"required": required, "schema": schema, "name": name, "key": id, "fieldId": id,
			"hasDefaultValue": false, "operations": []string{"set"}}
	}
	fields := []any{
		field("summary", "Summary", true, obj{"type": "string", "system": "summary"}),
		field("issuetype", "Issue Type", true, obj{"type": "issuetype", "system": "issuetype"}),
		field("project", "Project", true, obj{"type": "project", "system": "project"}),
		field("description", "Description", false, obj{"type": "string", "system": "description"}),
		field("assignee", "Assignee", false, obj{"type": "user", "system": "assignee"}),
		field("labels", "Labels", false, obj{"type": "array", "items": "string", "system": "labels"}),
		field("fixVersions", "Fix versions", false, obj{"type": "array", "items": "version", "system": "fixVersions"}),
	}
	if t.Subtask {
		fields = append(fields, field("parent", "Parent", true, obj{"type": "issuelink", "system": "parent"}))
	}
	if !s.opts.NoStoryPoints && !t.Subtask && t.Hierarchy == 0 {
		// Only the jsw field is on the Story screen, as on current sites.
		fields = append(fields, field(s.opts.StoryPointsField, "Story point estimate", false,
			obj{"type": "number", "custom": "com.pyxis.greenhopper.jira:jsw-story-points", "customId": 10016}))
	}
	start, max := pageParams(r, 50)
	var page []any
	for i := start; i < len(fields) && len(page) < max; i++ {
		page = append(page, fields[i])
	}
	writeJSON(w, http.StatusOK, obj{"fields": nonNil(page), "maxResults": max, "startAt": start, "total": len(fields)})
}

func nonNil(a []any) []any {
	if a == nil {
		return []any{}
	}
	return a
}

// fieldFilter reads ?fields=a,b (absent, *all or *navigable: every field;
// a leading "-" removes one).
func fieldFilter(list string) func(string) bool {
	if list == "" {
		return nil
	}
	want, drop, all := map[string]bool{}, map[string]bool{}, false
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "*all" || f == "*navigable":
			all = true
		case strings.HasPrefix(f, "-"):
			drop[f[1:]] = true
		case f != "":
			want[f] = true
		}
	}
	return func(name string) bool { return !drop[name] && (all || want[name]) }
}

func (s *Site) getIssue(w http.ResponseWriter, r *http.Request, idOrKey string) {
	is := s.lookup(idOrKey)
	if is == nil {
		writeErr(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(is, fieldFilter(r.URL.Query().Get("fields"))))
}

// search is GET/POST search/jql: {issues, nextPageToken, isLast} without
// total or startAt; only ids unless fields are asked for.
func (s *Site) search(w http.ResponseWriter, r *http.Request, body []byte) {
	q := r.URL.Query()
	jql, fields, token, max := q.Get("jql"), q.Get("fields"), q.Get("nextPageToken"), q.Get("maxResults")
	if r.Method == "POST" {
		var b struct {
			JQL           string   `json:"jql"`
			Fields        []string `json:"fields"`
			NextPageToken string   `json:"nextPageToken"`
			MaxResults    int      `json:"maxResults"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			writeErr(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
			return
		}
		jql, fields, token, max = b.JQL, strings.Join(b.Fields, ","), b.NextPageToken, strconv.Itoa(b.MaxResults)
	}
	match, err := s.compileJQL(jql)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, obj{"errorMessages": []string{err.Error()}, "errors": obj{}})
		return
	}
	var hits []*issue
	for _, k := range s.keysLocked() {
		if is := s.issues[k]; match(is) {
			hits = append(hits, is)
		}
	}
	start := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil {
			writeErr(w, http.StatusBadRequest, "The provided next page token is invalid or expired.")
			return
		}
		start = n
	}
	size, _ := strconv.Atoi(max)
	if size <= 0 || size > s.opts.PageSize {
		size = s.opts.PageSize
	}
	want := fieldFilter(fields)
	if want == nil {
		want = func(string) bool { return false } // ids only, as Jira does
	}
	page := []any{}
	for i := start; i < len(hits) && len(page) < size; i++ {
		page = append(page, s.issueJSON(hits[i], want))
	}
	res := obj{"issues": page, "isLast": start+len(page) >= len(hits)}
	if start+len(page) < len(hits) {
		res["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(start+len(page))))
	}
	writeJSON(w, http.StatusOK, res)
}

// createIssue is POST issue with Jira's checks: project, issue type,
// summary, a parent for sub-tasks (and only an epic as parent of a
// standard issue), assignable users, fields on the screen, text
// descriptions (v2). Refusals are 400 with an ErrorCollection.
func (s *Site) createIssue(w http.ResponseWriter, body []byte) {
	var req struct {
		Fields map[string]json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Fields == nil {
		writeErr(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	errs := map[string]string{}
	ref := func(name string) (id, key, accountID string, ok bool) {
		raw, present := req.Fields[name]
		if !present {
			return "", "", "", false
		}
		var v struct{ ID, Key, Name, AccountID string }
		if json.Unmarshal(raw, &v) != nil {
			errs[name] = "data was not an object"
			return "", "", "", false
		}
		if v.ID == "" {
			v.ID = v.Name
		}
		return v.ID, v.Key, v.AccountID, true
	}

	pid, pkey, _, _ := ref("project")
	p := s.projectByIDOrKey(pkey)
	if p == nil {
		p = s.projectByIDOrKey(pid)
	}
	if p == nil {
		writeFieldErrs(w, map[string]string{"project": "Specify a valid project ID or key"})
		return
	}
	tid, _, _, _ := ref("issuetype")
	t, ok := p.typeByID(tid)
	if !ok {
		t, ok = p.typeByName(tid)
	}
	if !ok {
		errs["issuetype"] = "Specify an issue type"
	}
	var summary string
	if raw, ok := req.Fields["summary"]; ok {
		_ = json.Unmarshal(raw, &summary)
	}
	if strings.TrimSpace(summary) == "" {
		errs["summary"] = "You must specify a summary of the issue."
	} else if len([]rune(summary)) > 255 {
		errs["summary"] = "Summary must be less than 255 characters."
	}
	var description string
	if raw, ok := req.Fields["description"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &description) != nil {
			errs["description"] = "Operation value must be a string"
		}
	}
	var parent *issue
	if _, pk, _, present := ref("parent"); present {
		parent = s.lookup(pk)
		if parent == nil {
			errs["parent"] = "Could not find issue by id or key."
		}
	}
	if ok {
		switch {
		case t.Subtask && parent == nil && errs["parent"] == "":
			errs["parent"] = "Parent issue is required for a sub-task."
		case t.Subtask && parent != nil && parent.Type.Subtask:
			errs["parent"] = "Given parent work item does not belong to appropriate hierarchy."
		case !t.Subtask && parent != nil && parent.Type.Hierarchy <= t.Hierarchy:
			errs["parent"] = "Given parent work item does not belong to appropriate hierarchy."
		}
		if parent != nil && parent.Project != p.Key && t.Subtask {
			errs["parent"] = "Sub-tasks must be created in the project of their parent."
		}
	}
	var assignee string
	if _, _, acc, present := ref("assignee"); present && acc != "" {
		if s.users[acc] == nil {
			errs["assignee"] = "User '" + acc + "' cannot be assigned issues."
		}
		assignee = acc
	}
	var labels []string
	if raw, ok := req.Fields["labels"]; ok {
		if json.Unmarshal(raw, &labels) != nil {
			errs["labels"] = "data was not an array"
		}
	}
	known := map[string]bool{"project": true, "issuetype": true, "summary": true, "description": true,
		"parent": true, "assignee": true, "labels": true, "fixVersions": true, "reporter": true}
	for name := range req.Fields {
		if !known[name] {
			errs[name] = "Field '" + name + "' cannot be set. It is not on the appropriate screen, or unknown."
		}
	}
	if len(errs) > 0 {
		writeFieldErrs(w, errs)
		return
	}
	is := s.newIssue(p, t)
	is.Summary, is.Description, is.Assignee, is.Labels = summary, description, assignee, labels
	if parent != nil {
		is.Parent = parent.Key
	}
	writeJSON(w, http.StatusCreated, obj{"id": is.ID, "key": is.Key, "self": s.base() + "/rest/api/2/issue/" + is.ID})
}

func (s *Site) listComments(w http.ResponseWriter, r *http.Request, idOrKey string) {
	is := s.lookup(idOrKey)
	if is == nil {
		writeErr(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	all := s.comments[is.Key]
	start, max := pageParams(r, 100)
	page := []any{}
	for i := start; i < len(all) && len(page) < max; i++ {
		page = append(page, s.commentJSON(is.ID, all[i]))
	}
	writeJSON(w, http.StatusOK, obj{"comments": page, "maxResults": max, "startAt": start, "total": len(all)})
}

// addComment takes {"body": "text"}. An empty visibility object (what
// go-jira v1 sends) is refused, as Jira Cloud does.
func (s *Site) addComment(w http.ResponseWriter, idOrKey string, body []byte) {
	is := s.lookup(idOrKey)
	if is == nil {
		writeErr(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		writeErr(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	if v, ok := req["visibility"]; ok {
		var vis struct{ Type, Value string }
		if json.Unmarshal(v, &vis) != nil || vis.Type == "" || vis.Value == "" {
			writeErr(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
			return
		}
	}
	var text string
	if json.Unmarshal(req["body"], &text) != nil || strings.TrimSpace(text) == "" {
		writeFieldErrs(w, map[string]string{"comment": "Comment body can not be empty!"})
		return
	}
	c := &comment{ID: s.id(), Author: s.me.AccountID, Body: text, Created: s.opts.Now().UTC()}
	s.comments[is.Key] = append(s.comments[is.Key], c)
	writeJSON(w, http.StatusCreated, s.commentJSON(is.ID, c))
}

// addAttachment takes multipart "file" parts and needs the XSRF header.
func (s *Site) addAttachment(w http.ResponseWriter, r *http.Request, idOrKey string, body []byte) {
	if t := r.Header.Get("X-Atlassian-Token"); t != "no-check" && t != "nocheck" {
		writeErr(w, http.StatusForbidden, "XSRF check failed")
		return
	}
	is := s.lookup(idOrKey)
	if is == nil {
		writeErr(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	mr, err := r.MultipartReader()
	if err != nil {
		writeErr(w, http.StatusBadRequest, "The request did not contain a multipart form.")
		return
	}
	out := []any{}
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if part.FormName() != "file" {
			continue
		}
		data, _ := io.ReadAll(part)
		id := s.id()
		s.attachments[is.Key] = append(s.attachments[is.Key], part.FileName())
		out = append(out, obj{"self": s.base() + "/rest/api/2/attachments/" + id, "id": id, "filename": part.FileName(),
			"author": s.userJSON(s.me.AccountID), "created": s.opts.Now().UTC().Format(jiraTime), "size": len(data),
			"mimeType": part.Header.Get("Content-Type"), "content": s.base() + "/rest/api/2/attachment/content/" + id})
	}
	if len(out) == 0 {
		writeErr(w, http.StatusBadRequest, "No file was attached.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// addLink is POST issueLink {type{name|id}, inwardIssue{key|id}, outwardIssue{key|id}}: 201, no body.
func (s *Site) addLink(w http.ResponseWriter, body []byte) {
	var req struct {
		Type struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"type"`
		InwardIssue  struct{ ID, Key string } `json:"inwardIssue"`
		OutwardIssue struct{ ID, Key string } `json:"outwardIssue"`
	}
	if json.Unmarshal(body, &req) != nil {
		writeErr(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	var lt *linkType
	for i := range linkTypes {
		if linkTypes[i].ID == req.Type.ID || strings.EqualFold(linkTypes[i].Name, req.Type.Name) {
			lt = &linkTypes[i]
		}
	}
	if lt == nil {
		writeErr(w, http.StatusNotFound, "No issue link type with name '"+req.Type.Name+"' found.")
		return
	}
	in, out := s.lookup(req.InwardIssue.Key+req.InwardIssue.ID), s.lookup(req.OutwardIssue.Key+req.OutwardIssue.ID)
	if in == nil || out == nil {
		writeErr(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	s.links = append(s.links, &link{ID: s.id(), Type: *lt, Inward: in.Key, Outward: out.Key})
	w.WriteHeader(http.StatusCreated)
}
