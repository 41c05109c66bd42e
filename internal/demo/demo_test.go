package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/report"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/store"
)

func noEnv(string) string { return "" }

// replayWeek runs the whole demo as `rolekeeper demo --no-wait --pause 0
// --listen 127.0.0.1:0` and hands the session to check before it stops.
func replayWeek(t *testing.T, check func(t *testing.T, s *session)) string {
	t.Helper()
	o, code, ok := parse([]string{"--no-wait", "--pause", "0", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, os.Stderr)
	if !ok {
		t.Fatalf("parse: exit %d", code)
	}
	var out, errOut bytes.Buffer
	inspected := false
	code = run(context.Background(), o, &out, &errOut, noEnv, func(s *session) {
		inspected = true
		check(t, s)
	})
	if code != exitOK || !inspected {
		t.Fatalf("demo exited %d (inspected %v)\nstdout:\n%s\nstderr:\n%s", code, inspected, out.String(), errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr not empty:\n%s", errOut.String())
	}
	return out.String()
}

// TestWeek replays the sample week and checks, against the sandbox and the
// daemon's API, that each rule did what the shipped roles.yaml says.
func TestWeek(t *testing.T) {
	var org *roles.Org
	out := replayWeek(t, func(t *testing.T, s *session) {
		org = s.sb.org
		ctx := context.Background()
		rp, bb := s.replay, s.sb.bb
		holds := func(account, role, team string) bool {
			for _, p := range org.Holders(role, team) {
				if p.AccountID == account {
					return true
				}
			}
			return false
		}
		reviewerWith := func(repo string, id int, role, team string) model.Actor {
			t.Helper()
			for _, a := range bb.Reviewers(repo, id) {
				if holds(a.AccountID, role, team) {
					return a
				}
			}
			t.Errorf("%s#%d: no reviewer holds %s (reviewers %v)", repo, id, role, bb.Reviewers(repo, id))
			return model.Actor{}
		}
		sourceStatus := func(repo string, id int, key string) string {
			pr, err := bb.PullRequest(repo, id)
			if err != nil {
				t.Fatal(err)
			}
			return bb.Statuses(repo, pr.SourceCommit)[key].State
		}

		// Every pull request: reviewers asked, one explaining comment,
		// and never the author asked.
		wantPRs := map[string]string{"checkout-promo": repoCheckout, "infra": repoInfra, "api-spec": repoPortal, "sdk": repoCheckout, "refunds": repoPayments}
		if len(rp.prs) != len(wantPRs) {
			t.Errorf("pull requests opened: %v", rp.prs)
		}
		for name, repo := range wantPRs {
			id := rp.prs[name]
			pr, err := bb.PullRequest(repo, id)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(pr.Reviewers) == 0 {
				t.Errorf("%s: no reviewer asked", name)
			}
			for _, a := range pr.Reviewers {
				if a.AccountID == pr.Author.AccountID {
					t.Errorf("%s: the author is asked to review", name)
				}
			}
			if n := len(rp.botComments(repo, id, true)); n != 1 {
				t.Errorf("%s: %d explaining comments, want 1", name, n)
			}
			if st := sourceStatus(repo, id, rules.StatusReview); st == "" {
				t.Errorf("%s: no %s status", name, rules.StatusReview)
			}
		}

		// 1: a checkout lead, tests passed with the test file.
		reviewerWith(repoCheckout, rp.prs["checkout-promo"], "technical-lead", "checkout")
		if st := sourceStatus(repoCheckout, rp.prs["checkout-promo"], rules.StatusTests); st != rules.StateSuccessful {
			t.Errorf("promo: tests %s", st)
		}
		// 2, 3, 4: the path rules brought their roles in.
		reviewerWith(repoInfra, rp.prs["infra"], "technical-lead", "platform")
		triggered(t, s, repoInfra, rp.prs["infra"], "path-review", "technical-lead")
		reviewerWith(repoPortal, rp.prs["api-spec"], "developer-relations-engineer", "platform")
		triggered(t, s, repoPortal, rp.prs["api-spec"], "path-review", "developer-relations-engineer")
		reviewerWith(repoCheckout, rp.prs["sdk"], "chief-architect", "")
		triggered(t, s, repoCheckout, rp.prs["sdk"], "path-review", "chief-architect")
		if st := sourceStatus(repoCheckout, rp.prs["sdk"], rules.StatusTests); st != rules.StateFailed {
			t.Errorf("sdk: tests %s, want FAILED (no test changed)", st)
		}
		// Least loaded: the two checkout pull requests went to both leads.
		a := reviewerWith(repoCheckout, rp.prs["checkout-promo"], "technical-lead", "checkout")
		b := reviewerWith(repoCheckout, rp.prs["sdk"], "technical-lead", "checkout")
		if a.AccountID == b.AccountID {
			t.Errorf("both checkout pull requests went to %s", a.DisplayName)
		}

		// 5: the away lead is not asked; the other is.
		lead := reviewerWith(repoPayments, rp.prs["refunds"], "technical-lead", "payments")
		if p := org.PersonByAccount(lead.AccountID); p == nil {
			t.Fatalf("reviewer %v not in roles.yaml", lead)
		} else if away, _ := p.AwayAt(weekStart.AddDate(0, 0, 1)); away {
			t.Errorf("%s is away and was asked", p.ID)
		}
		// 6: the self-approval was ignored, the lead's counted.
		ds, err := s.daemon.decisions(ctx, url.Values{"repository": {repoPayments}, "pr": {strconv.Itoa(rp.prs["refunds"])}})
		if err != nil {
			t.Fatal(err)
		}
		var review []string // the review status of each decision
		selfIgnored := false
		for _, v := range ds {
			var d rules.Decision
			if err := json.Unmarshal(v.Decision, &d); err != nil {
				t.Fatal(err)
			}
			for _, st := range d.Statuses {
				if st.Key == rules.StatusReview {
					review = append(review, st.State)
				}
			}
			for _, r := range d.Rules {
				selfIgnored = selfIgnored || (r.Kind == "code-review" && len(r.Ignored) > 0 && len(r.ApprovedBy) == 0)
			}
		}
		if want := []string{"INPROGRESS", "INPROGRESS", "SUCCESSFUL", "SUCCESSFUL"}; strings.Join(review, ",") != strings.Join(want, ",") {
			t.Errorf("review status over created, self-approved, approved, merged = %v, want %v", review, want)
		}
		if !selfIgnored {
			t.Error("no decision ignored the author's approval while nothing else counted")
		}

		// 7: findings of both merges.
		fs, err := s.app.Store().ListFindings(ctx, store.FindingFilter{})
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]model.Finding{}
		for _, f := range fs {
			byKey[f.Key] = f
		}
		sdkRef := repoCheckout + "#" + strconv.Itoa(rp.prs["sdk"])
		refundsRef := repoPayments + "#" + strconv.Itoa(rp.prs["refunds"])
		for key, held := range map[string]bool{
			"merge-unapproved:" + sdkRef: false, "merge-untested:" + sdkRef: false,
			"merge-approved:" + refundsRef: true, "merge-tested:" + refundsRef: true,
		} {
			if f, ok := byKey[key]; !ok || f.Held != held {
				t.Errorf("finding %s = %+v (present %v), want held=%v", key, f, ok, held)
			}
		}

		// 8: the gate opened on the product owner's word, not the lead's.
		g, err := s.daemon.gate(ctx, rp.gateID)
		if err != nil {
			t.Fatal(err)
		}
		if g.State != store.GateApproved || !holds(g.DecidedBy, "product-owner", "payments") {
			t.Errorf("gate = %+v, want approved by a payments product owner", g)
		}
		if st := bb.Statuses(repoPayments, rp.deployed)[rules.StatusDeployPrefix+"production"]; st.State != rules.StateSuccessful {
			t.Errorf("deploy status = %+v", st)
		}
		refused := 0
		for _, c := range rp.botComments(repoPayments, rp.prs["refunds"], false) {
			if strings.Contains(c.Body, "changes nothing") && strings.Contains(c.Body, "@{"+org.Person("amara").AccountID+"}") {
				refused++
			}
		}
		if refused != 1 {
			t.Errorf("%d replies refusing the technical lead's /approve-deploy, want 1", refused)
		}

		// 9: one test plan for the QA lead, created once despite the
		// update; one comment on the story.
		epic, ok := s.sb.jira.Issue(rp.epic)
		if !ok || len(epic.Subtasks) != 1 {
			t.Fatalf("epic %s: %+v", rp.epic, epic)
		}
		plan, _ := s.sb.jira.Issue(epic.Subtasks[0])
		if !strings.HasPrefix(plan.Summary, rules.TestPlanPrefix) || !holds(plan.Assignee, "qa-lead", "") {
			t.Errorf("test plan = %+v", plan)
		}
		if n := s.sb.jira.Count("POST /rest/api/2/issue"); n != 1 {
			t.Errorf("%d issues created in Jira, want 1", n)
		}
		if cs := s.sb.jira.Comments(rp.story); len(cs) != 1 || !strings.Contains(cs[0], "story points") {
			t.Errorf("story comments = %q", cs)
		}

		// The weekly report counts the week's violations.
		raw, err := s.daemon.weeklyReport(ctx, weekName, "json")
		if err != nil {
			t.Fatal(err)
		}
		var rep report.Report
		if err := json.Unmarshal(raw, &rep); err != nil {
			t.Fatal(err)
		}
		refs := map[string]bool{}
		for _, v := range rep.Violations {
			refs[v.Ref] = true
		}
		for _, ref := range []string{sdkRef, rp.story} {
			if !refs[ref] {
				t.Errorf("weekly report lacks violation %s: %v", ref, refs)
			}
		}
		// Nothing was dead-lettered.
		var dead []server.DeliveryView
		if err := s.daemon.get(ctx, "/api/v1/deliveries?state=dead", &dead); err != nil || len(dead) > 0 {
			t.Errorf("dead deliveries: %v %v", dead, err)
		}
		publicPages(t, s, org)
		// The pipelines' token opens gates, nothing else.
		var viaPipeline []server.DecisionView
		pipeline := *s.daemon
		pipeline.adminToken = s.daemon.token
		if err := pipeline.get(ctx, "/api/v1/decisions?kind=gate", &viaPipeline); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("decisions with the pipelines' token: %v, want 403", err)
		}
	})

	for _, s := range (&replay{}).steps() {
		if !strings.Contains(out, s.title) {
			t.Errorf("output lacks the step %q", s.title)
		}
	}
	kofi := org.Person("kofi")
	_, until := kofi.AwayAt(weekStart)
	for _, want := range []string{
		kofi.DisplayName() + " is away until " + until.Format("2 Jan 2006"),
		"a self-approval does not count",
		"APPROVED",
		"/api/v1/reports/weekly?week=" + weekName + "&format=html",
		"/decisions/",
		"export ROLEKEEPER_API_TOKEN=",
		"export ROLEKEEPER_ADMIN_TOKEN=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// publicPages opens every decision page the demo printed, without a
// token, in each format: each is served by its public id and shows no
// account id from roles.yaml; the numeric id is not served.
func publicPages(t *testing.T, s *session, org *roles.Org) {
	t.Helper()
	if len(s.replay.decisions) == 0 {
		t.Fatal("no decision pages printed")
	}
	for _, link := range s.replay.decisions {
		id := link[strings.LastIndex(link, "/")+1:]
		if !store.ValidPublicID(id) {
			t.Errorf("decision link %s: not a public id", link)
			continue
		}
		for _, format := range []string{"", "?format=text", "?format=json"} {
			resp, err := http.Get(link + format)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s%s: %d", link, format, resp.StatusCode)
			}
			for _, p := range org.People {
				if p.AccountID != "" && strings.Contains(string(body), p.AccountID) {
					t.Errorf("%s%s shows the account id of %s", link, format, p.ID)
				}
			}
		}
	}
	first := s.replay.decisions[0]
	numeric := first[:strings.LastIndex(first, "/")+1] + "1"
	if resp, err := http.Get(numeric); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s: %v %v, want 404", numeric, resp, err)
	} else {
		resp.Body.Close()
	}
}

// triggered checks that the pull request's first decision triggered a rule
// of the kind held by the role.
func triggered(t *testing.T, s *session, repo string, id int, kind, role string) {
	t.Helper()
	ds, err := s.daemon.decisions(context.Background(), url.Values{"repository": {repo}, "pr": {strconv.Itoa(id)}})
	if err != nil || len(ds) == 0 {
		t.Fatalf("%s#%d: decisions %v %v", repo, id, ds, err)
	}
	var d rules.Decision
	if err := json.Unmarshal(ds[0].Decision, &d); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Rules {
		if r.Triggered && r.Kind == kind && r.Role == role && len(r.Picks) > 0 {
			return
		}
	}
	t.Errorf("%s#%d: no %s rule of %s triggered with a pick", repo, id, kind, role)
}

// TestStopsOnCancel: without --no-wait the daemon serves until the context
// ends (Ctrl-C), then stops gracefully with status 0. An API token from the
// environment is used and never printed.
func TestStopsOnCancel(t *testing.T) {
	const token, admin = "token-from-the-environment", "admin-token-from-the-environment"
	getenv := func(k string) string {
		switch k {
		case "ROLEKEEPER_API_TOKEN":
			return token
		case "ROLEKEEPER_ADMIN_TOKEN":
			return admin
		}
		return ""
	}
	o, _, ok := parse([]string{"--pause", "0", "--listen", "127.0.0.1:0"}, os.Stderr)
	if !ok {
		t.Fatal("parse")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, o, &out, &errOut, getenv, func(s *session) {
		if !strings.Contains(out.String(), "press Ctrl-C") {
			t.Error("the demo does not say it keeps running")
		}
		if s.daemon.token != token || s.daemon.adminToken != admin {
			t.Errorf("tokens %q, %q, want the environment's", s.daemon.token, s.daemon.adminToken)
		}
		cancel()
	})
	if code != exitOK || !strings.Contains(out.String(), "Stopping rolekeeper") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), token) || strings.Contains(out.String()+errOut.String(), admin) {
		t.Error("a token from the environment was printed")
	}
}

// syncBuffer is a bytes.Buffer that signals when a text first appears.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if w.seen != nil && strings.Contains(w.b.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return n, err
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestInterruptDuringReplay: Ctrl-C in the middle of the week stops the
// daemon gracefully too, and removes the temporary directory.
func TestInterruptDuringReplay(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	o, _, ok := parse([]string{"--pause", "1h", "--listen", "127.0.0.1:0"}, os.Stderr)
	if !ok {
		t.Fatal("parse")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{want: "Every event below", seen: make(chan struct{})}
	seen := out.seen
	go func() {
		<-seen // the daemon runs and the first pause began
		cancel()
	}()
	var errOut bytes.Buffer
	if code := run(ctx, o, out, &errOut, noEnv, nil); code != exitOK || !strings.Contains(out.String(), "Interrupted") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "rolekeeper-demo-*")); len(left) > 0 {
		t.Errorf("temporary data left behind: %v", left)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		ok   bool
	}{
		{nil, exitOK, true},
		{[]string{"--no-wait", "--pause", "0", "--listen", "127.0.0.1:0", "--data", "x", "--verbose"}, exitOK, true},
		{[]string{"-h"}, exitOK, false},
		{[]string{"--pause", "-1s"}, exitUsage, false},
		{[]string{"--pause", "soon"}, exitUsage, false},
		{[]string{"--bogus"}, exitUsage, false},
		{[]string{"extra"}, exitUsage, false},
	} {
		var errOut bytes.Buffer
		_, code, ok := parse(tt.args, &errOut)
		if code != tt.code || ok != tt.ok {
			t.Errorf("parse(%q) = %d %v, want %d %v (%s)", tt.args, code, ok, tt.code, tt.ok, errOut.String())
		}
	}
	if o, _, _ := parse(nil, &bytes.Buffer{}); o.listen != "127.0.0.1:8080" || o.pause <= 0 || o.noWait {
		t.Errorf("defaults = %+v", o)
	}
}

// TestDataDir: a given directory must be empty (or new), and is kept.
func TestDataDir(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "rolekeeper.db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	code := Command(context.Background(), []string{"--no-wait", "--pause", "0", "--listen", "127.0.0.1:0", "--data", full}, &bytes.Buffer{}, &errOut, noEnv)
	if code != exitUsage || !strings.Contains(errOut.String(), "not empty") {
		t.Errorf("non-empty --data: exit %d, %s", code, errOut.String())
	}

	fresh := filepath.Join(t.TempDir(), "new", "dir")
	dir, cleanup, err := dataDir(fresh)
	if err != nil || dir != fresh {
		t.Fatalf("dataDir(new) = %q %v", dir, err)
	}
	cleanup()
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a given directory was removed: %v", err)
	}
	tmp, cleanup, err := dataDir("")
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary directory kept: %v", err)
	}
}

// TestPickAddr: the asked address when free, a free port beside it when
// taken, a concrete port for ":0".
func TestPickAddr(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	for _, tt := range []struct {
		listen string
		same   bool
	}{
		{busy.Addr().String(), false},
		{freeAddr, true},
		{"127.0.0.1:0", false},
	} {
		got, err := pickAddr(tt.listen)
		if err != nil {
			t.Fatalf("pickAddr(%s): %v", tt.listen, err)
		}
		host, port, _ := net.SplitHostPort(got)
		if host != "127.0.0.1" || port == "0" || (got == tt.listen) != tt.same {
			t.Errorf("pickAddr(%s) = %s, same=%v", tt.listen, got, tt.same)
		}
	}
}

// TestCast: a roles.yaml without a person the week needs is refused with
// a message naming them.
func TestCast(t *testing.T) {
	org, err := roles.ParseAt("roles.yaml", []byte("version: 1\norganization: X\nroles:\n  qa-lead:\n    title: QA\n    scope: organization\n    responsibilities: [Tests]\n"), weekStart)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCast(org, weekStart); err == nil || !strings.Contains(err.Error(), `"diego"`) {
		t.Errorf("checkCast = %v", err)
	}
}

func TestWrap(t *testing.T) {
	var b bytes.Buffer
	p := printer{w: &b}
	p.say("  note: ", "%s", strings.Repeat("word ", 40))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("not wrapped: %q", b.String())
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > width {
			t.Errorf("line %d is %d wide", i, n)
		}
		if i > 0 && !strings.HasPrefix(l, strings.Repeat(" ", len("  note: "))+"word") {
			t.Errorf("line %d not under the lead: %q", i, l)
		}
	}
}
