package jira

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// IssueFields are the standard fields GetIssue asks for; the discovered
// story-point and sprint fields are added.
var IssueFields = []string{"summary", "description", "issuetype", "project", "status", "assignee", "reporter",
	"fixVersions", "labels", "parent", "subtasks", "issuelinks", "created", "updated", "priority"}

// GetIssue reads an issue (REST v2: description as text) with the fields
// rolekeeper uses. Story points and sprints are read from the fields
// Discover found for the issue's project.
func (c *Client) GetIssue(ctx context.Context, key string) (*model.Issue, error) {
	fields := append(append([]string(nil), IssueFields...), c.customFields(ProjectOfKey(key))...)
	var ri rawIssue
	q := url.Values{"fields": {strings.Join(fields, ",")}}
	if err := c.do(ctx, "GET", "rest/api/2/issue/"+url.PathEscape(key), q, nil, &ri); err != nil {
		return nil, err
	}
	is, err := c.decode(&ri)
	if err != nil {
		return nil, err
	}
	return &is, nil
}

func (c *Client) decode(ri *rawIssue) (model.Issue, error) {
	is, err := decodeIssue(ri, fieldIDs{}, c.site)
	if err != nil {
		return model.Issue{}, &upstream.Error{Service: Service, Endpoint: "issue " + ri.Key, Message: "undecodable issue", Err: err}
	}
	if ids := c.idsFor(is.Project); ids != (fieldIDs{}) {
		return decodeIssue(ri, ids, c.site)
	}
	return is, nil
}

// Search runs a JQL query through GET /rest/api/2/search/jql (the
// endpoint that replaced /search), asking for the given fields (Jira
// returns only ids without them), following nextPageToken for at most
// maxPages pages (0: 10) of 100 issues.
func (c *Client) Search(ctx context.Context, jql string, fields []string, maxPages int) ([]model.Issue, error) {
	if maxPages <= 0 {
		maxPages = 10
	}
	if len(fields) == 0 {
		fields = []string{"summary", "issuetype", "project", "status"}
	}
	var out []model.Issue
	token := ""
	for page := 0; page < maxPages; page++ {
		q := url.Values{"jql": {jql}, "fields": {strings.Join(fields, ",")}, "maxResults": {"100"}}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		var res struct {
			Issues        []rawIssue `json:"issues"`
			NextPageToken string     `json:"nextPageToken"`
			IsLast        bool       `json:"isLast"`
		}
		if err := c.do(ctx, "GET", "rest/api/2/search/jql", q, nil, &res); err != nil {
			return nil, err
		}
		for i := range res.Issues {
			is, err := c.decode(&res.Issues[i])
			if err != nil {
				return nil, err
			}
			out = append(out, is)
		}
		if res.IsLast || res.NextPageToken == "" {
			return out, nil
		}
		token = res.NextPageToken
	}
	c.log.Warn("jira search stopped at the page limit", zap.String("jql", jql), zap.Int("pages", maxPages))
	return out, nil
}

// CreateIssueRequest is a new issue: a sub-task when Parent is set and the
// type is the project's sub-task type.
type CreateIssueRequest struct {
	Project           string // key
	IssueTypeID       string
	Parent            string // parent key, for a sub-task
	Summary           string // cut to Jira's 255 characters
	Description       string // wiki text (v2)
	AssigneeAccountID string // "" leaves it unassigned
	Labels            []string
}

// CreateIssue creates an issue and returns its key. A refusal carries
// Jira's field errors in the message ("parent: …; summary: …"), which
// go-jira would drop.
func (c *Client) CreateIssue(ctx context.Context, r CreateIssueRequest) (string, error) {
	fields := map[string]any{
		"project":   map[string]string{"key": r.Project},
		"issuetype": map[string]string{"id": r.IssueTypeID},
		"summary":   truncate(r.Summary, 255),
	}
	if r.Parent != "" {
		fields["parent"] = map[string]string{"key": r.Parent}
	}
	if r.Description != "" {
		fields["description"] = r.Description
	}
	if r.AssigneeAccountID != "" {
		fields["assignee"] = map[string]string{"accountId": r.AssigneeAccountID}
	}
	if len(r.Labels) > 0 {
		fields["labels"] = r.Labels
	}
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := c.do(ctx, "POST", "rest/api/2/issue", nil, map[string]any{"fields": fields}, &created); err != nil {
		return "", err
	}
	if created.Key == "" {
		return "", &upstream.Error{Service: Service, Method: "POST", Endpoint: "POST /rest/api/2/issue", Message: "created issue without key"}
	}
	return created.Key, nil
}

// LinkIssues links two issues with a link type named as on the site
// ("Relates", "Blocks"): inward "relates to" outward.
func (c *Client) LinkIssues(ctx context.Context, linkType, inwardKey, outwardKey string) error {
	body := map[string]any{
		"type":         map[string]string{"name": linkType},
		"inwardIssue":  map[string]string{"key": inwardKey},
		"outwardIssue": map[string]string{"key": outwardKey},
	}
	return c.do(ctx, "POST", "rest/api/2/issueLink", nil, body, nil)
}

// AddComment posts {"body": text}: go-jira's AddComment also sends author,
// updateAuthor and an empty visibility, which Jira Cloud refuses.
func (c *Client) AddComment(ctx context.Context, key, body string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, "POST", "rest/api/2/issue/"+url.PathEscape(key)+"/comment", nil, map[string]string{"body": body}, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// ListComments returns an issue's comments, oldest first (v2: text bodies).
func (c *Client) ListComments(ctx context.Context, key string) ([]model.Comment, error) {
	var out []model.Comment
	for start := 0; start < 5000; {
		var page struct {
			Comments []struct {
				ID      string   `json:"id"`
				Body    any      `json:"body"`
				Author  *rawUser `json:"author"`
				Created string   `json:"created"`
			} `json:"comments"`
			Total int `json:"total"`
		}
		q := url.Values{"startAt": {strconv.Itoa(start)}, "maxResults": {"100"}, "orderBy": {"created"}}
		if err := c.do(ctx, "GET", "rest/api/2/issue/"+url.PathEscape(key)+"/comment", q, nil, &page); err != nil {
			return nil, err
		}
		for _, cm := range page.Comments {
			m := model.Comment{ID: cm.ID, CreatedAt: parseTime(cm.Created)}
			if s, ok := cm.Body.(string); ok {
				m.Body = s
			}
			if a := cm.Author.actor(); a != nil {
				m.Author = *a
			}
			out = append(out, m)
		}
		start += len(page.Comments)
		if len(page.Comments) == 0 || start >= page.Total {
			break
		}
	}
	return out, nil
}

// AddAttachment uploads a file to an issue (multipart "file", with the
// X-Atlassian-Token: no-check header Jira requires against XSRF).
func (c *Client) AddAttachment(ctx context.Context, key, filename string, data []byte) error {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile("file", filename)
	if err != nil {
		return fmt.Errorf("jira: %w", err)
	}
	if _, err := part.Write(data); err != nil {
		return fmt.Errorf("jira: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("jira: %w", err)
	}
	req, err := c.jc.NewMultiPartRequestWithContext(ctx, "POST", "rest/api/2/issue/"+url.PathEscape(key)+"/attachments", &buf)
	if err != nil {
		return fmt.Errorf("jira: %w", err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("X-Atlassian-Token", "no-check")
	req.Header.Set("Accept", "application/json")
	return c.send(ctx, req, nil)
}

// ProjectVersions lists a project's versions.
func (c *Client) ProjectVersions(ctx context.Context, project string) ([]model.Version, error) {
	var raw []rawVersion
	if err := c.do(ctx, "GET", "rest/api/2/project/"+url.PathEscape(project)+"/versions", nil, nil, &raw); err != nil {
		return nil, err
	}
	out := make([]model.Version, 0, len(raw))
	for _, v := range raw {
		out = append(out, v.model(strings.ToUpper(project)))
	}
	return out, nil
}

// Myself returns the account the client acts as.
func (c *Client) Myself(ctx context.Context) (model.Actor, error) {
	u, resp, err := c.jc.User.GetSelfWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return model.Actor{}, ctx.Err()
		}
		return model.Actor{}, c.fromGoJira("GET /rest/api/2/myself", resp, err)
	}
	a := (&rawUser{AccountID: u.AccountID, Name: u.Name, Key: u.Key, DisplayName: u.DisplayName}).actor()
	if a == nil {
		return model.Actor{}, errors.New("jira: myself without account")
	}
	return *a, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
