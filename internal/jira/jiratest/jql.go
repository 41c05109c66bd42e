package jiratest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// compileJQL understands the small part of JQL rolekeeper sends: clauses
// joined by AND over project, issuetype, fixVersion, sprint
// (openSprints()), statusCategory, status, assignee, parent, key, summary
// (~) and labels, with =, !=, IN, NOT IN and ~; ORDER BY is ignored. An
// empty query is refused as Jira refuses unbounded searches.
func (s *Site) compileJQL(jql string) (func(*issue) bool, error) {
	toks, err := tokenize(jql)
	if err != nil {
		return nil, err
	}
	for i, t := range toks {
		if !t.quoted && strings.EqualFold(t.text, "order") && i+1 < len(toks) && strings.EqualFold(toks[i+1].text, "by") {
			toks = toks[:i]
			break
		}
	}
	if len(toks) == 0 {
		return nil, errors.New("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
	}
	var preds []func(*issue) bool
	for len(toks) > 0 {
		end := len(toks)
		depth := 0
		for i, t := range toks {
			if !t.quoted && t.text == "(" {
				depth++
			} else if !t.quoted && t.text == ")" {
				depth--
			} else if depth == 0 && !t.quoted && strings.EqualFold(t.text, "and") {
				end = i
				break
			}
		}
		p, err := s.clause(toks[:end])
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
		if end == len(toks) {
			break
		}
		toks = toks[end+1:]
	}
	return func(is *issue) bool {
		for _, p := range preds {
			if !p(is) {
				return false
			}
		}
		return true
	}, nil
}

type token struct {
	text   string
	quoted bool
}

func tokenize(q string) ([]token, error) {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(q) && q[j] != c; j++ {
				if q[j] == '\\' && j+1 < len(q) {
					j++
				}
				b.WriteByte(q[j])
			}
			if j >= len(q) {
				return nil, errors.New("Error in the JQL Query: the quoted string is not terminated.")
			}
			out = append(out, token{text: b.String(), quoted: true})
			i = j + 1
		case c == '(' || c == ')' || c == ',' || c == '=' || c == '~':
			out = append(out, token{text: string(c)})
			i++
		case c == '!' && i+1 < len(q) && q[i+1] == '=':
			out = append(out, token{text: "!="})
			i += 2
		case c == '!' && i+1 < len(q) && q[i+1] == '~':
			out = append(out, token{text: "!~"})
			i += 2
		default:
			j := i
			for j < len(q) && !strings.ContainsRune(" \t\n()=,~!\"'", rune(q[j])) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("Error in the JQL Query: the character '%c' is a reserved JQL character.", c)
			}
			out = append(out, token{text: q[i:j]})
			i = j
		}
	}
	return out, nil
}

// clause compiles "field op value".
func (s *Site) clause(toks []token) (func(*issue) bool, error) {
	if len(toks) < 3 {
		return nil, fmt.Errorf("Error in the JQL Query: expecting an operator in %q.", join(toks))
	}
	field := strings.ToLower(toks[0].text)
	op := strings.ToLower(toks[1].text)
	rest := toks[2:]
	if op == "not" && len(rest) > 0 && strings.EqualFold(rest[0].text, "in") {
		op, rest = "not in", rest[1:]
	}
	var values []string
	fn := ""
	switch {
	case len(rest) == 3 && rest[1].text == "(" && rest[2].text == ")":
		fn = strings.ToLower(rest[0].text)
	case op == "in" || op == "not in":
		if len(rest) < 2 || rest[0].text != "(" || rest[len(rest)-1].text != ")" {
			return nil, fmt.Errorf("Error in the JQL Query: expecting a list after %s.", strings.ToUpper(op))
		}
		for _, t := range rest[1 : len(rest)-1] {
			if t.text != "," || t.quoted {
				values = append(values, t.text)
			}
		}
	case len(rest) == 1:
		values = []string{rest[0].text}
	default:
		return nil, fmt.Errorf("Error in the JQL Query: unexpected %q.", join(rest))
	}
	negate := op == "!=" || op == "not in" || op == "!~"
	var get func(*issue) []string
	contains := op == "~" || op == "!~"
	switch field {
	case "project":
		get = func(is *issue) []string { return []string{is.Project, s.projects[is.Project].ID} }
	case "issuetype", "type":
		if fn == "subtaskissuetypes" || fn == "standardissuetypes" {
			want := fn == "subtaskissuetypes"
			return func(is *issue) bool { return (is.Type.Subtask == want) != negate }, nil
		}
		get = func(is *issue) []string { return []string{is.Type.Name, is.Type.ID} }
	case "fixversion":
		get = func(is *issue) []string {
			var out []string
			for _, id := range is.FixVersions {
				out = append(out, id)
				if v := s.versions[id]; v != nil {
					out = append(out, v.Name)
				}
			}
			return out
		}
	case "sprint":
		if fn == "opensprints" || fn == "closedsprints" || fn == "futuresprints" {
			state := map[string]string{"opensprints": "active", "closedsprints": "closed", "futuresprints": "future"}[fn]
			return func(is *issue) bool {
				in := false
				for _, id := range is.Sprints {
					if sp := s.sprints[id]; sp != nil && sp.State == state {
						in = true
					}
				}
				return in != negate
			}, nil
		}
		get = func(is *issue) []string {
			var out []string
			for _, id := range is.Sprints {
				out = append(out, strconv.Itoa(id))
				if sp := s.sprints[id]; sp != nil {
					out = append(out, sp.Name)
				}
			}
			return out
		}
	case "statuscategory":
		get = func(is *issue) []string {
			id, key, name := statusCategory(is.Status)
			return []string{strconv.Itoa(id), key, name}
		}
	case "status":
		get = func(is *issue) []string { return []string{is.Status} }
	case "assignee":
		if fn == "currentuser" {
			values = []string{s.me.AccountID}
		}
		get = func(is *issue) []string { return []string{is.Assignee} }
	case "parent":
		get = func(is *issue) []string {
			if p := s.issues[is.Parent]; p != nil {
				return []string{p.Key, p.ID}
			}
			return nil
		}
	case "key", "issuekey", "id":
		get = func(is *issue) []string { return []string{is.Key, is.ID} }
	case "summary", "text":
		get = func(is *issue) []string { return []string{is.Summary} }
	case "labels":
		get = func(is *issue) []string { return is.Labels }
	default:
		return nil, fmt.Errorf("Field '%s' does not exist or you do not have permission to view it.", toks[0].text)
	}
	if fn != "" && field != "assignee" {
		return nil, fmt.Errorf("Unable to find JQL function '%s()'.", rest[0].text)
	}
	if contains != (field == "summary" || field == "text") {
		return nil, fmt.Errorf("The operator '%s' is not supported by the '%s' field.", toks[1].text, toks[0].text)
	}
	return func(is *issue) bool {
		have := get(is)
		hit := false
		for _, v := range values {
			for _, h := range have {
				if (contains && strings.Contains(strings.ToLower(h), strings.ToLower(v))) || (!contains && strings.EqualFold(h, v)) {
					hit = true
				}
			}
		}
		return hit != negate
	}, nil
}

func join(toks []token) string {
	parts := make([]string, len(toks))
	for i, t := range toks {
		parts[i] = t.text
	}
	return strings.Join(parts, " ")
}
