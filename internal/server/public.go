package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// The decision page is public (its link is posted on pull requests, and the
// server faces the internet for Bitbucket), so it shows what a reader of
// the pull request needs and nothing that identifies accounts or explains
// an emergency: account ids become names (roles.yaml, or the decision's
// own picks), and break-glass reasons are withheld. Admins read the whole
// record through /api/v1/decisions.

const (
	// outsider replaces an account id that no name is known for.
	outsider = "someone not in roles.yaml"
	// withheld replaces a break-glass reason.
	withheld = "[break-glass reason withheld: see the admin API]"
)

// accountIDLike matches Atlassian account ids in free text: the current
// form "<digits>:<uuid>" and the older 24 hexadecimal characters (a full
// commit hash is 40 and is not matched).
var accountIDLike = regexp.MustCompile(`(?:\baccount )?\b\d{1,10}:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b|(?:\baccount )?\b[0-9a-f]{24}\b`)

// accountKeys are JSON keys whose values are account ids (a string or a
// list of strings) in the decisions rolekeeper stores: rules.RuleResult's
// approved_by, rules.DeployResult's authors, the gate's decided_by and its
// history's by.
var accountKeys = map[string]bool{"approved_by": true, "authors": true, "decided_by": true, "by": true, "account": true}

// automatic is the gate's name for decisions rolekeeper made itself.
const automatic = "rolekeeper"

// redactor makes one decision fit for its public page.
type redactor struct {
	names   map[string]string // account id → display name
	known   []string          // keys of names, longest first
	reasons []string          // break-glass reasons to withhold
}

// newRedactor learns the names of roles.yaml (people) and of the decision
// itself (objects with account_id and name), and the break-glass reasons
// in it (objects with break_glass true: their reason fields).
func newRedactor(people map[string]string, decision any) *redactor {
	r := &redactor{names: map[string]string{}}
	var learn func(v any)
	learn = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			acc, _ := v["account_id"].(string)
			name, _ := v["name"].(string)
			if acc != "" && name != "" && name != acc {
				r.names[acc] = name
			}
			if ids, names := strs(v["approved_by"]), strs(v["approved_names"]); len(ids) == len(names) {
				for i, id := range ids {
					if names[i] != "" && names[i] != id {
						r.names[id] = names[i]
					}
				}
			}
			if glass, _ := v["break_glass"].(bool); glass {
				for k, x := range v {
					if s, ok := x.(string); ok && strings.Contains(k, "reason") && strings.TrimSpace(s) != "" {
						r.reasons = append(r.reasons, s)
					}
				}
			}
			for _, x := range v {
				learn(x)
			}
		case []any:
			for _, x := range v {
				learn(x)
			}
		}
	}
	learn(decision)
	for id, name := range people { // roles.yaml wins over a name recorded then
		if id != "" && name != "" {
			r.names[id] = name
		}
	}
	for id := range r.names {
		r.known = append(r.known, id)
	}
	slices.SortFunc(r.known, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	slices.SortFunc(r.reasons, func(a, b string) int { return len(b) - len(a) })
	return r
}

func strs(v any) []string {
	xs, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// name is who an account id is on a public page.
func (r *redactor) name(id string) string {
	switch {
	case id == "" || id == automatic:
		return id
	case r.names[id] != "":
		return bidiControls.Replace(r.names[id])
	}
	return outsider
}

// bidiControls are the explicit direction embeddings, overrides, isolates
// and marks: dropped from what a page shows, so that a name cannot turn
// the text after it around ("\u202Egnp.exe" reads as "exe.png"). The
// pages isolate every user text (<bdi>), so right-to-left names still
// read right.
var bidiControls = strings.NewReplacer(
	"\u202a", "", "\u202b", "", "\u202c", "", "\u202d", "", "\u202e", "",
	"\u2066", "", "\u2067", "", "\u2068", "", "\u2069", "", "\u200e", "", "\u200f", "",
)

// text withholds break-glass reasons and replaces account ids in free
// text. A reason shorter than 4 characters is withheld only where it is
// the whole text or its end (": reason"), not inside other words.
func (r *redactor) text(s string) string {
	for _, reason := range r.reasons {
		switch {
		case s == reason:
			return withheld
		case len(reason) >= 4:
			s = strings.ReplaceAll(s, reason, withheld)
		case strings.HasSuffix(s, ": "+reason):
			s = strings.TrimSuffix(s, reason) + withheld
		}
	}
	for _, id := range r.known {
		s = strings.ReplaceAll(s, "account "+id, r.names[id]) // "account X authored …" reads as the person
		s = strings.ReplaceAll(s, id, r.names[id])
	}
	return bidiControls.Replace(accountIDLike.ReplaceAllString(s, outsider))
}

// value returns v as it may be shown: account_id fields dropped (the name
// stays, or is filled in), account id fields turned into names, break-glass
// reasons dropped, every string through text.
func (r *redactor) value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		glass, _ := v["break_glass"].(bool)
		for k, x := range v {
			switch {
			case k == "account_id":
				if _, ok := v["name"]; !ok {
					if s, ok := x.(string); ok {
						out["name"] = r.name(s)
					}
				}
			case glass && strings.Contains(k, "reason"):
				// withheld: not even its length is shown
			case accountKeys[k]:
				out[k] = r.accounts(x)
			default:
				out[k] = r.value(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = r.value(x)
		}
		return out
	case string:
		return r.text(v)
	}
	return v
}

func (r *redactor) accounts(v any) any {
	switch v := v.(type) {
	case string:
		return r.name(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			if s, ok := x.(string); ok {
				out[i] = r.name(s)
			} else {
				out[i] = r.value(x)
			}
		}
		return out
	}
	return r.value(v)
}

// publicRecord is rec as its public page shows it: the decision redacted,
// summary and outcome through text, no snapshot, no delivery id.
func publicRecord(rec *store.DecisionRecord, people map[string]string) *store.DecisionRecord {
	var doc any
	if len(rec.Decision) > 0 {
		dec := json.NewDecoder(bytes.NewReader(rec.Decision))
		dec.UseNumber()
		if dec.Decode(&doc) != nil {
			doc = nil
		}
	}
	r := newRedactor(people, doc)
	out := &store.DecisionRecord{
		ID: rec.ID, PublicID: rec.PublicID, Kind: rec.Kind, Repository: rec.Repository, PR: rec.PR,
		Commit: rec.Commit, IssueKey: rec.IssueKey, Team: rec.Team, Trigger: r.text(rec.Trigger),
		Summary: r.text(rec.Summary), Outcome: r.text(rec.Outcome), CreatedAt: rec.CreatedAt,
	}
	if doc != nil {
		if b, err := json.Marshal(r.value(doc)); err == nil {
			out.Decision = b
		}
	}
	return out
}

// PublicDecisionView is a decision as its public page shows it in JSON
// (?format=json): no numeric id, delivery id or snapshot, and the decision
// redacted as on the HTML page.
type PublicDecisionView struct {
	ID         string          `json:"id"` // the public id
	Kind       string          `json:"kind"`
	Repository string          `json:"repository,omitempty"`
	PR         int             `json:"pr,omitempty"`
	Commit     string          `json:"commit,omitempty"`
	Issue      string          `json:"issue,omitempty"`
	Team       string          `json:"team,omitempty"`
	Trigger    string          `json:"trigger,omitempty"`
	Summary    string          `json:"summary"`
	Outcome    string          `json:"outcome"`
	CreatedAt  time.Time       `json:"created_at"`
	URL        string          `json:"url"`
	Decision   json.RawMessage `json:"decision,omitempty"`
}

func (s *Server) publicView(d *store.DecisionRecord) PublicDecisionView {
	return PublicDecisionView{
		ID: d.PublicID, Kind: string(d.Kind), Repository: d.Repository, PR: d.PR, Commit: d.Commit,
		Issue: d.IssueKey, Team: d.Team, Trigger: d.Trigger, Summary: d.Summary, Outcome: d.Outcome,
		CreatedAt: d.CreatedAt, URL: store.DecisionURL(s.opt.PublicURL, d.PublicID), Decision: d.Decision,
	}
}
