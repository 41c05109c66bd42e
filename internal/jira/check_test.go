package jira_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/jira"
)

// intakeBefore is the intake as it was before CheckWebhook: webhookEvent
// decoded alone, then the whole parse. CheckWebhook is held to it.
func intakeBefore(body []byte) (key string, noEvent bool, err error) {
	var head struct {
		WebhookEvent string `json:"webhookEvent"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return "", false, err
	}
	if head.WebhookEvent == "" {
		return "", true, errors.New("no webhookEvent")
	}
	_, err = jira.ParseWebhook(body)
	return head.WebhookEvent, false, err
}

// checkEvents are the keys every body is also tried under.
var checkEvents = []string{
	jira.WebhookIssueCreated, jira.WebhookIssueUpdated, jira.WebhookIssueDeleted,
	jira.WebhookCommentCreated, jira.WebhookCommentUpdated, jira.WebhookCommentDeleted,
	jira.WebhookVersionReleased, jira.WebhookSprintStarted, jira.WebhookSprintUpdated,
	"jira:worklog_updated", "",
}

// agree fails t unless CheckWebhook answers body as the intake did before:
// both accept with the same event key, or both refuse, for the same
// reason when it is a missing webhookEvent; and a body ParseWebhook
// accepts is never refused.
func agree(t *testing.T, what string, body []byte) (accepted bool) {
	t.Helper()
	wantKey, wantNoEvent, werr := intakeBefore(body)
	key, err := jira.CheckWebhook(body)
	_, perr := jira.ParseWebhook(body)
	switch {
	case werr == nil && err != nil:
		t.Errorf("%s: the intake accepted it, CheckWebhook refuses: %v", what, err)
	case werr != nil && err == nil:
		t.Errorf("%s: the intake refused it (%v), CheckWebhook accepts", what, werr)
	case key != wantKey:
		t.Errorf("%s: event key %q, want %q", what, key, wantKey)
	case errors.Is(err, jira.ErrNoWebhookEvent) != wantNoEvent:
		t.Errorf("%s: CheckWebhook: %v; missing webhookEvent: %v", what, err, wantNoEvent)
	case err != nil && !errors.Is(err, jira.ErrMalformed):
		t.Errorf("%s: %v does not wrap ErrMalformed", what, err)
	case perr == nil && err != nil:
		t.Errorf("%s: ParseWebhook accepts it, CheckWebhook refuses: %v", what, err)
	}
	return err == nil
}

// withEvent is body with webhookEvent set to event ("" removes it).
func withEvent(t *testing.T, body []byte, event string) []byte {
	t.Helper()
	return edit(t, body, func(v map[string]any) {
		if event == "" {
			delete(v, "webhookEvent")
		} else {
			v["webhookEvent"] = event
		}
	})
}

func edit(t *testing.T, body []byte, f func(v map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	f(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckWebhookAgreesWithParseOnEveryFixture(t *testing.T) {
	accepted, n := 0, 0
	for _, path := range fixtures.Glob(t, "jira/webhooks/*.json") {
		name := filepath.Base(path)
		body := fixtures.Read(t, "jira/webhooks/"+name)
		if !agree(t, name, body) {
			t.Errorf("%s: refused", name)
		}
		for _, event := range checkEvents {
			if agree(t, name+" as "+event, withEvent(t, body, event)) {
				accepted++
			}
		}
		n++
	}
	if n < 20 || accepted < 6*n {
		t.Errorf("%d fixtures, %d accepted under other events: the comparison proves little", n, accepted)
	}
}

// sprintBody and versionBody are the objects of sprint and version events,
// as the REST API answers them (no such delivery is in the fixtures).
func sprintBody(t *testing.T) map[string]any {
	var v map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "jira/api/agile_sprint_get__go-atlassian.json"), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func versionBody(t *testing.T) map[string]any {
	var v []map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "jira/api/project_versions_list__jira-cli.json"), &v); err != nil || len(v) == 0 {
		t.Fatal(len(v), err)
	}
	return v[0]
}

func sub(v map[string]any, name string) map[string]any {
	m, _ := v[name].(map[string]any)
	if m == nil {
		m = map[string]any{}
		v[name] = m
	}
	return m
}

// Bodies edited the ways a forger, a proxy or a strange sender would: each
// is answered as the intake answered it before, under every event key.
func TestCheckWebhookAgreesOnEditedBodies(t *testing.T) {
	set := func(obj, name string, val any) func(v map[string]any) {
		return func(v map[string]any) {
			if obj == "" {
				v[name] = val
			} else {
				sub(v, obj)[name] = val
			}
		}
	}
	del := func(obj, name string) func(v map[string]any) {
		return func(v map[string]any) {
			if obj == "" {
				delete(v, name)
			} else {
				delete(sub(v, obj), name)
			}
		}
	}
	edits := map[string]func(v map[string]any){
		"no webhookEvent":         del("", "webhookEvent"),
		"null webhookEvent":       set("", "webhookEvent", nil),
		"empty webhookEvent":      set("", "webhookEvent", ""),
		"webhookEvent a number":   set("", "webhookEvent", 5),
		"webhookEvent an object":  set("", "webhookEvent", map[string]any{"a": "jira:issue_created"}),
		"webhookEvent escaped":    set("", "webhookEvent", "jira:issue_created\n"),
		"webhookEvent 201 bytes":  set("", "webhookEvent", strings.Repeat("e", 201)),
		"no issue":                del("", "issue"),
		"null issue":              set("", "issue", nil),
		"issue a string":          set("", "issue", "A-1"),
		"no issue key":            del("issue", "key"),
		"empty issue key":         set("issue", "key", ""),
		"null issue key":          set("issue", "key", nil),
		"issue key a number":      set("issue", "key", 7),
		"issue key escaped":       set("issue", "key", "A-1\u00e9\t"),
		"issue id a number":       set("issue", "id", 10001),
		"issue fields a string":   set("issue", "fields", "x"),
		"issue fields null":       set("issue", "fields", nil),
		"issue fields an array":   set("issue", "fields", []any{}),
		"no version":              del("", "version"),
		"version an array":        set("", "version", []any{1}),
		"no version id":           del("version", "id"),
		"empty version id":        set("version", "id", ""),
		"version id a number":     set("version", "id", 10000),
		"no sprint":               del("", "sprint"),
		"sprint a number":         set("", "sprint", 1),
		"no sprint id":            del("sprint", "id"),
		"null sprint id":          set("sprint", "id", nil),
		"sprint id zero":          set("sprint", "id", 0),
		"sprint id negative":      set("sprint", "id", -4),
		"sprint id a fraction":    set("sprint", "id", 1.5),
		"sprint id huge":          set("sprint", "id", json.Number("99999999999999999999")),
		"sprint id exponent":      set("sprint", "id", json.Number("1e2")),
		"sprint id a string":      set("sprint", "id", "12"),
		"sprint id string zero":   set("sprint", "id", "0"),
		"sprint id not a number":  set("sprint", "id", "x"),
		"sprint id plus":          set("sprint", "id", "+5"),
		"sprint id leading zero":  set("sprint", "id", "012"),
		"sprint id string float":  set("sprint", "id", "1.5"),
		"sprint id bool":          set("sprint", "id", true),
		"timestamp a string":      set("", "timestamp", "1550286471789"),
		"timestamp RFC 3339":      set("", "timestamp", "2019-02-16T03:07:51.789Z"),
		"timestamp unreadable":    set("", "timestamp", "yesterday"),
		"timestamp a number":      set("", "timestamp", 1550286471789),
		"timestamp null":          set("", "timestamp", nil),
		"timestamp an object":     set("", "timestamp", map[string]any{"ms": 1}),
		"no timestamp":            del("", "timestamp"),
		"user a string":           set("", "user", "bob"),
		"changelog an array":      set("", "changelog", []any{}),
		"comment a number":        set("", "comment", 3),
		"event type name a bool":  set("", "issue_event_type_name", true),
		"Issue capitalised":       func(v map[string]any) { v["Issue"] = v["issue"]; delete(v, "issue") },
		"WEBHOOKEVENT upper case": func(v map[string]any) { v["WEBHOOKEVENT"] = v["webhookEvent"]; delete(v, "webhookEvent") },
		"issue KEY upper case":    func(v map[string]any) { i := sub(v, "issue"); i["KEY"] = i["key"]; delete(i, "key") },
		"sprint ID upper case":    func(v map[string]any) { s := sub(v, "sprint"); s["ID"] = s["id"]; delete(s, "id") },
	}
	bodies := map[string][]byte{}
	for _, name := range []string{"jira_issue_updated__mattermost-summary.json", "comment_created__mattermost.json", "comment_deleted__mattermost.json"} {
		bodies[name] = fixtures.Read(t, "jira/webhooks/"+name)
	}
	sprint, version := sprintBody(t), versionBody(t)
	bodies["sprint"], _ = json.Marshal(map[string]any{"timestamp": 1619757000000, "webhookEvent": "sprint_started", "sprint": sprint})
	bodies["version"], _ = json.Marshal(map[string]any{"timestamp": 1619757000000, "webhookEvent": "jira:version_released", "version": version})
	for file, body := range bodies {
		for what, f := range edits {
			b := edit(t, body, f)
			agree(t, file+" with "+what, b)
			for _, event := range checkEvents[:len(checkEvents)-1] {
				agree(t, file+" with "+what+" as "+event, edit(t, b, func(v map[string]any) {
					if _, ok := v["webhookEvent"]; ok { // edited away: left so
						v["webhookEvent"] = event
					}
				}))
			}
		}
	}
	// Written unusually: escaped, repeated and case-folded names, not an
	// object, cut short, trailing data.
	for _, body := range []string{
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}}`,
		`{"webhook\u0045vent":"jira:issue_created","issue":{"key":"A-1"}}`,
		`{"webhookEvent":"jira:issue_created","iss\u0075e":{"key":"A-1"}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"k\u0065y":"A-1"}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A\u002d1"}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"},"iss\u0075e":null}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"},"webhook\u0045vent":""}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1","k\u0065y":""}}`,
		`{"webhookEvent":"jira:issue_created","webhookEvent":"","issue":{"key":"A-1"}}`,
		`{"webhookEvent":"","webhookEvent":"jira:issue_created","issue":{"key":"A-1"}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"},"issue":null}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1","key":""}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"","Key":"A-1"}}`,
		"{\"webhookEvent\":\"jira:issue_created\",\"issue\":{\"\u212aey\":\"A-1\"}}", // Kelvin sign: folds to k
		"{\"webhookEvent\":\"jira:issue_created\",\"issue\":{\"key\":\"A-\xff\"}}",
		`{"webhookEvent":"sprint_started","sprint":{"id":3}}`,
		`{"webhookEvent":"sprint_started","sprint":{"id":3,"id":0}}`,
		`{"webhookEvent":"sprint_started","sprint":{"id":"\u0033"}}`,
		`{"webhookEvent":"sprint_started","sprint":{"Id":3}}`,
		`{"webhookEvent":"jira:version_released","version":{"id":"1"},"Version":{"id":""}}`,
		`{"webhookEvent":"jira:version_released","version":{"id":"1"},"timestamp":"1","timestamp":{}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}} x`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}}{}`,
		`  {"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}}  `,
		`[{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}}]`,
		`"jira:issue_created"`, `5`, `null`, `{}`, ``, ` `, `{"webhookEvent":null}`,
	} {
		agree(t, body, []byte(body))
	}
}

// The one difference, by design: a wrong JSON type below the members the
// check decodes is found by the worker's parse, which dead-letters it.
func TestCheckWebhookLeavesDeepTypesToTheWorker(t *testing.T) {
	for _, body := range []string{
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1","fields":{"summary":7}}}`,
		`{"webhookEvent":"jira:issue_updated","issue":{"key":"A-1"},"user":{"accountId":5}}`,
		`{"webhookEvent":"jira:issue_updated","issue":{"key":"A-1"},"changelog":{"items":5}}`,
		`{"webhookEvent":"comment_created","issue":{"key":"A-1"},"comment":{"id":5}}`,
		`{"webhookEvent":"jira:version_released","version":{"id":"1","released":"yes"}}`,
		`{"webhookEvent":"sprint_started","sprint":{"id":1,"name":2}}`,
	} {
		var typeErr *json.UnmarshalTypeError
		if _, err := jira.ParseWebhook([]byte(body)); !errors.As(err, &typeErr) {
			t.Errorf("ParseWebhook(%s): %v, want a type error", body, err)
		}
		var want struct{ WebhookEvent string }
		_ = json.Unmarshal([]byte(body), &want)
		if key, err := jira.CheckWebhook([]byte(body)); err != nil || key != want.WebhookEvent {
			t.Errorf("CheckWebhook(%s) = %q, %v", body, key, err)
		}
	}
}

// FuzzJiraCheckWebhook holds CheckWebhook to the intake as it was: it
// never refuses a body that was accepted nor one ParseWebhook accepts,
// finds the same event key, and accepts a
// body that was refused only for a wrong JSON type deep in it.
func FuzzJiraCheckWebhook(f *testing.F) {
	for _, path := range fixtures.Glob(f, "jira/webhooks/*.json") {
		f.Add(fixtures.Read(f, "jira/webhooks/"+filepath.Base(path)))
	}
	f.Add([]byte(`{"webhookEvent":"sprint_started","sprint":{"id":"12"}}`))
	f.Add([]byte(`{"webhookEvent":"jira:version_released","version":{"id":"1"}}`))
	f.Add([]byte(`{"webhookEvent":"comment_deleted","issue":{"key":"A-1"},"timestamp":"1"}`))
	// Bodies refused, or answered by the whole parse, for a start there.
	for _, body := range []string{
		`{"webhookEvent":"jira:version_released","version":{"id":""}}`,
		`{"webhookEvent":"sprint_updated","sprint":{"id":0}}`,
		`{"webhookEvent":"comment_created","issue":{"id":"1"}}`,
		`{"webhookEvent":"","issue":{"key":"A-1"}}`,
		`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"},"iss\u0075e":{"Key":""}}`,
		`{"webhookEvent":"jira:issue_deleted","issue":{"key":"A-1"}} {`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		wantKey, _, werr := intakeBefore(body)
		key, err := jira.CheckWebhook(body)
		ev, perr := jira.ParseWebhook(body)
		var typeErr *json.UnmarshalTypeError
		switch {
		case werr == nil && err != nil:
			t.Fatalf("the intake accepted it, CheckWebhook refuses: %v", err)
		case perr == nil && err != nil:
			t.Fatalf("ParseWebhook accepts, CheckWebhook refuses: %v", err)
		case key != wantKey:
			t.Fatalf("event key %q, want %q", key, wantKey)
		case err == nil && perr == nil && key != ev.Key:
			t.Fatalf("event key %q, ParseWebhook says %q", key, ev.Key)
		case werr != nil && err == nil && !errors.As(werr, &typeErr) && !strings.Contains(werr.Error(), "invalid number literal"):
			t.Fatalf("the intake refused it (%v), CheckWebhook accepts", werr)
		}
	})
}

// BenchmarkJiraIntakeCheck compares what the intake spends on a Jira body
// before it answers: before, webhookEvent decoded alone then the whole
// parse; now, CheckWebhook.
func BenchmarkJiraIntakeCheck(b *testing.B) {
	for _, name := range []string{"jira_issue_updated__mattermost-summary.json", "jira_issue_created__mattermost-many-fields.json"} {
		body := fixtures.Read(b, "jira/webhooks/"+name)
		for _, c := range []struct {
			name  string
			check func([]byte) error
		}{
			{"before", func(b []byte) error { _, _, err := intakeBefore(b); return err }},
			{"check", func(b []byte) error { _, err := jira.CheckWebhook(b); return err }},
		} {
			b.Run(strings.TrimSuffix(name, ".json")+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := c.check(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
