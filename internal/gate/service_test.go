package gate

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gates.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type env struct {
	clk  *clock
	host *fakeHost
	st   Store
	fu   *followUps
	svc  *Service
	opt  Options
}

func newEnv(t testing.TB, st Store, mod func(*Options)) *env {
	t.Helper()
	e := &env{clk: &clock{t: t0}, st: st, fu: &followUps{}}
	e.host = newFakeHost(t, e.clk.now)
	e.opt = Options{Host: e.host, Store: st, Roles: roles.NewCurrent(testOrg(t)), FollowUps: e.fu,
		PublicURL: "https://rk.example/", Now: e.clk.now}
	if mod != nil {
		mod(&e.opt)
	}
	e.svc = New(e.opt)
	return e
}

// restart is a new process on the same store and Bitbucket.
func (e *env) restart() { e.svc = New(e.opt) }

func ask(commit, environment string) AskRequest {
	return AskRequest{Repository: "Reloadly/Payments-API", Commit: strings.ToUpper(commit), Environment: environment, BuildNumber: 42, PipelineUUID: "{p-1}"}
}

func mustAsk(t *testing.T, e *env, req AskRequest, wantCreated bool) *store.Gate {
	t.Helper()
	g, created, err := e.svc.Ask(context.Background(), req)
	if err != nil {
		t.Fatalf("ask %+v: %v", req, err)
	}
	if created != wantCreated {
		t.Fatalf("ask %+v: created=%v, want %v", req, created, wantCreated)
	}
	return g
}

func prEvent(kind model.EventKind, pr int) *model.Event {
	return &model.Event{Kind: kind, Repository: testRepo, PullRequest: &model.PullRequest{ID: pr}}
}

func TestServiceLifecycle(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := newEnv(t, st, nil)
	merge := hex40(1)
	e.host.addPR(7, "acc-ana", hex40(100)) // Ana, a product owner, wrote it
	e.host.merge(7, merge)

	g := mustAsk(t, e, ask(merge, "Production"), true)
	if g.State != store.GatePending || g.Repository != testRepo || g.Commit != merge || g.Environment != "production" {
		t.Fatalf("gate = %+v", g)
	}
	if strings.Join(g.Approvers, ",") != "acc-bo" || strings.Join(g.Excluded, ",") != "acc-ana" || len(g.PRs) != 1 || g.PRs[0] != 7 || !g.Notified {
		t.Errorf("approvers %v excluded %v prs %v notified %v", g.Approvers, g.Excluded, g.PRs, g.Notified)
	}
	if s := e.host.status(merge, "production"); s.State != "INPROGRESS" || !strings.HasPrefix(s.URL, "https://rk.example/decisions/") || s.Key != "rolekeeper-deploy-production" {
		t.Errorf("status = %+v", s)
	}
	if c := e.host.postedTo(7); len(c) != 1 || !strings.Contains(c[0], "@{acc-bo}") || strings.Contains(c[0], "@{acc-ana}") || !strings.Contains(c[0], "/approve-deploy production") {
		t.Fatalf("mention = %q", c)
	}
	// Its link opens the gate as it is when clicked: the public gate page.
	if c := e.host.postedTo(7)[0]; !strings.Contains(c, "Details: https://rk.example/gates/") {
		t.Errorf("mention does not link the gate page: %q", c)
	}
	if len(ParseCommands(e.host.postedTo(7)[0])) != 0 {
		t.Errorf("rolekeeper's own comment reads as a command")
	}

	// Asking again gives the same gate and mentions nobody twice.
	e.clk.add(time.Minute)
	if g2 := mustAsk(t, e, ask(merge, "production"), false); g2.ID != g.ID || len(e.host.postedTo(7)) != 1 {
		t.Fatalf("second ask: %s, %d comments", g2.ID, len(e.host.postedTo(7)))
	}

	// The author approving her own change, a lead's /approve-deploy: nothing
	// opens; the lead gets one reply, though the gate is read twice.
	e.host.approve(7, "acc-ana")
	e.host.say(7, "acc-mei", "/approve-deploy production")
	for i := 0; i < 2; i++ {
		e.clk.add(time.Minute)
		if g, _ = e.svc.Get(ctx, g.ID); g.State != store.GatePending {
			t.Fatalf("gate opened: %+v", g)
		}
	}
	if c := e.host.postedTo(7); len(c) != 2 || !strings.Contains(c[1], "@{acc-mei}") || !strings.Contains(c[1], "changes nothing") {
		t.Fatalf("replies = %q", c)
	}

	// A restart, then Bo's command arrives by webhook: the gate opens.
	e.restart()
	e.clk.add(time.Minute)
	e.host.say(7, "acc-bo", "/approve-deploy production")
	if err := e.svc.Handle(ctx, prEvent(model.EventPRComment, 7)); err != nil {
		t.Fatal(err)
	}
	if g, _ = st.GetGate(ctx, g.ID); g.State != store.GateApproved || g.DecidedBy != "acc-bo" || !g.DecidedAt.Equal(e.clk.now()) {
		t.Fatalf("after /approve-deploy: %+v", g)
	}
	if s := e.host.status(merge, "production"); s.State != "SUCCESSFUL" || !strings.Contains(s.Description, "Bo Lin") {
		t.Errorf("status = %+v", s)
	}
	// Withdrawing an approval, or a late reject, does not close it again.
	e.host.say(7, "acc-bo", "/reject-deploy production changed my mind")
	e.clk.add(time.Minute)
	if g, _ = e.svc.Get(ctx, g.ID); g.State != store.GateApproved {
		t.Errorf("gate closed again: %+v", g)
	}
	decisions, err := st.ListDecisions(ctx, store.DecisionFilter{Kind: model.SubjectGate, Repository: testRepo})
	if err != nil || len(decisions) != 2 || decisions[0].Trigger != "gate.asked" || decisions[1].Trigger != "gate.approved" ||
		!strings.Contains(decisions[1].Summary, "approved by Bo Lin") {
		t.Errorf("decisions = %+v %v", decisions, err)
	}
	v := e.svc.View(g)
	if v.URL != "https://rk.example/decisions/"+decisions[1].PublicID || v.DecidedByName != "Bo Lin" || v.DecidedAt == nil || len(v.History) < 4 {
		t.Errorf("view = %+v", v)
	}

	// An environment no rule lists (a typo of production, say) is refused:
	// nothing stored, no call to Bitbucket.
	calls, gates := e.host.callCount(), len(mustList(t, st))
	if _, _, err := e.svc.Ask(ctx, ask(merge, "prodution")); !errors.Is(err, ErrUnknownEnvironment) || !strings.Contains(err.Error(), "gated environments: production") {
		t.Errorf("an environment no rule lists: %v", err)
	}
	if e.host.callCount() != calls || len(mustList(t, st)) != gates {
		t.Errorf("an unknown environment made %d calls, stored %d gates", e.host.callCount()-calls, len(mustList(t, st))-gates)
	}
}

func mustList(t *testing.T, st Store) []store.Gate {
	t.Helper()
	gs, err := st.ListGates(context.Background(), store.GateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func TestServiceApprovalPresentOpensAtOnce(t *testing.T) {
	e := newEnv(t, newMemStore(), nil)
	e.host.addPR(3, "acc-mei", hex40(30))
	e.clk.add(time.Minute)
	e.host.approve(3, "acc-ana") // before the merge, as Bitbucket requires, after the last push
	e.host.merge(3, hex40(31))
	e.clk.add(time.Hour)
	g := mustAsk(t, e, ask(hex40(31), "production"), true)
	if g.State != store.GateApproved || g.DecidedBy != "acc-ana" || !g.DecidedAt.Equal(g.CreatedAt) {
		t.Fatalf("gate = %+v", g)
	}
	if len(e.host.postedTo(3)) != 0 {
		t.Errorf("mentioned approvers of an approved gate: %q", e.host.postedTo(3))
	}
	if s := e.host.status(hex40(31), "production"); s.State != "SUCCESSFUL" {
		t.Errorf("status = %+v", s)
	}
}

func TestServiceRejectExpireAndAskAgain(t *testing.T) {
	ctx := context.Background()
	ms := newMemStore()
	reg := prometheus.NewRegistry()
	e := newEnv(t, ms, func(o *Options) { o.TTL, o.Registerer = 2*time.Hour, reg })
	merge := hex40(2)
	e.host.addPR(5, "acc-tom", hex40(50))
	e.host.merge(5, merge)

	g1 := mustAsk(t, e, ask(merge, "production"), true)
	e.clk.add(time.Minute)
	e.host.say(5, "acc-ana", "/reject-deploy production the migration is not reversible")
	if err := e.svc.Handle(ctx, prEvent(model.EventPRComment, 5)); err != nil {
		t.Fatal(err)
	}
	if g1, _ = ms.GetGate(ctx, g1.ID); g1.State != store.GateRejected || g1.Reason != "the migration is not reversible" {
		t.Fatalf("rejected: %+v", g1)
	}
	if s := e.host.status(merge, "production"); s.State != "FAILED" || !strings.Contains(s.Description, "rejected by Ana Souza") {
		t.Errorf("status = %+v", s)
	}

	// Asking again after a rejection: a new gate, which the old command does
	// not close.
	e.clk.add(time.Minute)
	g2 := mustAsk(t, e, ask(merge, "production"), true)
	if g2.ID == g1.ID || g2.State != store.GatePending || g2.DedupeKey == g1.DedupeKey {
		t.Fatalf("second gate: %+v", g2)
	}
	// It expires when nobody decides.
	e.clk.add(2 * time.Hour)
	if err := e.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if g2, _ = ms.GetGate(ctx, g2.ID); g2.State != store.GateExpired || g2.DecidedBy != Automatic || !g2.DecidedAt.Equal(g2.ExpiresAt) {
		t.Fatalf("expired: %+v", g2)
	}
	if s := e.host.status(merge, "production"); s.State != "FAILED" || !strings.Contains(s.Description, "expired") {
		t.Errorf("status = %+v", s)
	}

	// A pending gate past its time that nobody expired: asking expires it
	// and starts a third.
	e.clk.add(time.Minute)
	g3 := mustAsk(t, e, ask(merge, "production"), true)
	e.clk.add(3 * time.Hour)
	g4 := mustAsk(t, e, ask(merge, "production"), true)
	if old, _ := ms.GetGate(ctx, g3.ID); old.State != store.GateExpired || g4.ID == g3.ID || g4.State != store.GatePending {
		t.Errorf("third %+v, fourth %+v", old, g4)
	}
	if n := len(ms.decisionsOf(g1.ID)); n != 2 {
		t.Errorf("gate 1 has %d decision records, want 2 (asked, rejected)", n)
	}
	metrics := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			metrics[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"rolekeeper_gates_created_total": 4,
		"rolekeeper_gates_decided_total,break_glass=false,environment=production,state=rejected": 1,
		"rolekeeper_gates_decided_total,break_glass=false,environment=production,state=expired":  2,
	}
	if !reflect.DeepEqual(metrics, want) {
		t.Errorf("metrics = %v, want %v", metrics, want)
	}
}

func TestServiceBreakGlass(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := newEnv(t, st, nil)
	merge := hex40(3)
	e.host.addPR(8, "acc-ana", hex40(80))
	e.host.merge(8, merge)
	g := mustAsk(t, e, ask(merge, "production"), true)

	for _, tt := range []struct {
		id, by, reason string
		want           error
	}{
		{g.ID, "acc-bo", "hurry", ErrForbidden},
		{g.ID, "acc-nobody", "hurry", ErrForbidden},
		{g.ID, "", "hurry", ErrForbidden},
		{g.ID, "acc-raj", "  ", ErrBadRequest},
		{"g_missing", "acc-raj", "hurry", store.ErrNotFound},
	} {
		if _, err := e.svc.BreakGlass(ctx, tt.id, tt.by, tt.reason); !errors.Is(err, tt.want) {
			t.Errorf("BreakGlass(%s, %s, %q) = %v, want %v", tt.id, tt.by, tt.reason, err, tt.want)
		}
	}
	if cur, _ := st.GetGate(ctx, g.ID); cur.State != store.GatePending {
		t.Fatalf("refused break-glass changed the gate: %+v", cur)
	}

	e.clk.add(time.Minute)
	g, err := e.svc.BreakGlass(ctx, g.ID, "acc-raj", "payments are down, hotfix")
	// The admin token acted, naming Raj: nothing claims Raj did.
	if err != nil || g.State != store.GateApproved || !g.BreakGlass || g.DecidedBy != AdminToken ||
		g.Reason != "via admin token, naming Raj Patel: payments are down, hotfix" {
		t.Fatalf("break-glass: %+v %v", g, err)
	}
	if v := e.svc.View(g); v.BreakGlassVia != ViaAdminToken || v.Names == nil || v.Names.AccountID != "acc-raj" || v.DecidedByName != "the admin token" {
		t.Errorf("view: via %q, names %+v, decided by %q", v.BreakGlassVia, v.Names, v.DecidedByName)
	}
	// The follow-up goes to the product owner who did not write the change.
	if g.FollowUp != "PAY-41" || len(e.fu.created) != 1 || !strings.HasPrefix(e.fu.created[0], "PAY|acc-bo|") {
		t.Errorf("follow-up %q, created %q", g.FollowUp, e.fu.created)
	}
	f, err := st.ListFindings(ctx, store.FindingFilter{Kind: "break-glass"})
	if err != nil || len(f) != 1 || f[0].Key != "break-glass:"+g.ID || f[0].Actor != AdminToken || f[0].Held ||
		!strings.Contains(f[0].Reason, "break-glass via admin token, naming Raj Patel: payments are down") || strings.Contains(f[0].Reason, "by Raj") {
		t.Errorf("findings = %+v %v", f, err)
	}
	if s := e.host.status(merge, "production"); s.State != "SUCCESSFUL" || !strings.HasPrefix(s.Description, "break-glass via admin token, naming Raj Patel: payments are down") {
		t.Errorf("status = %+v", s)
	}
	if d := ms(t, st, g.ID); !strings.Contains(d, "opened by break-glass via admin token, naming Raj Patel") {
		t.Errorf("decision summary = %q", d)
	}
	if _, err := e.svc.BreakGlass(ctx, g.ID, "acc-raj", "again"); !errors.Is(err, ErrDecided) {
		t.Errorf("second break-glass: %v", err)
	}

	// By comment, with Jira failing: still open, still reported, and the
	// failure is in the history.
	e.fu.err = errors.New("jira: 503")
	merge2 := hex40(4)
	e.host.addPR(9, "acc-tom", hex40(90))
	e.host.merge(9, merge2)
	g2 := mustAsk(t, e, ask(merge2, "production"), true)
	e.clk.add(time.Minute)
	e.host.say(9, "acc-raj", "/break-glass production certificate expires in an hour")
	if g2, _ = e.svc.Get(ctx, g2.ID); g2.State != store.GateApproved || !g2.BreakGlass || g2.FollowUp != "" || g2.DecidedBy != "acc-raj" {
		t.Fatalf("break-glass by comment: %+v", g2)
	}
	if v := e.svc.View(g2); v.BreakGlassVia != ViaComment || v.Names != nil {
		t.Errorf("comment break-glass view: via %q, names %+v", v.BreakGlassVia, v.Names)
	}
	if s := e.host.status(merge2, "production"); !strings.HasPrefix(s.Description, "break-glass by Raj Patel: certificate") {
		t.Errorf("status = %+v", s)
	}
	if h := readDetails(g2); !strings.Contains(h.FollowUpError, "jira: 503") {
		t.Errorf("follow-up error = %q", h.FollowUpError)
	}
	if f, _ := st.ListFindings(ctx, store.FindingFilter{Kind: "break-glass"}); len(f) != 2 {
		t.Errorf("findings = %d, want 2", len(f))
	}
}

// ms is the latest decision summary of a gate.
func ms(t *testing.T, st *sqlite.Store, gateID string) string {
	t.Helper()
	ds, err := st.ListDecisions(context.Background(), store.DecisionFilter{Kind: model.SubjectGate, Repository: testRepo})
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for _, d := range ds {
		if strings.Contains(d.Summary, gateID) {
			last = d.Summary
		}
	}
	return last
}

func TestServiceNewCommitNeedsItsOwnApproval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, newMemStore(), nil)
	h1, h2 := hex40(11), hex40(12)
	e.host.addPR(4, "acc-mei", h1) // a branch deployment, before the merge
	g1 := mustAsk(t, e, ask(h1, "production"), true)
	if g1.State != store.GatePending || len(g1.PRs) != 1 {
		t.Fatalf("gate = %+v", g1)
	}
	e.host.push(4, h2)
	e.clk.add(time.Minute)
	e.host.approve(4, "acc-bo") // Bo approves what the pull request is now
	if err := e.svc.Handle(ctx, prEvent(model.EventPRApproved, 4)); err != nil {
		t.Fatal(err)
	}
	if g1, _ = e.svc.Get(ctx, g1.ID); g1.State != store.GatePending || len(g1.PRs) != 0 {
		t.Errorf("the old commit's gate: %+v", g1)
	}
	if g2 := mustAsk(t, e, ask(h2, "production"), true); g2.State != store.GateApproved || g2.DecidedBy != "acc-bo" {
		t.Errorf("the new commit's gate: %+v", g2)
	}
}

func TestServiceFindsPullRequests(t *testing.T) {
	ctx := context.Background()
	t.Run("rolekeeper's record of merge commits", func(t *testing.T) {
		st := openStore(t)
		e := newEnv(t, st, nil)
		e.host.bb.SetLinkIndex(testRepo, bitbuckettest.IndexMissing) // no commit-links index: lookups answer 404
		merge := hex40(21)
		e.host.addPR(12, "acc-ana", hex40(120))
		e.host.merge(12, merge)
		// prflow records full hashes (the merge commit resolved for a gated
		// team); the store matches nothing else.
		if err := st.UpsertPR(ctx, &store.PRRecord{Repository: testRepo, ID: 12, AuthorAccountID: "acc-ana", State: model.PRMerged,
			SourceCommit: hex40(120), MergeCommit: merge}); err != nil {
			t.Fatal(err)
		}
		g := mustAsk(t, e, ask(merge, "production"), true)
		if len(g.PRs) != 1 || g.PRs[0] != 12 || strings.Join(g.Approvers, ",") != "acc-bo" || len(e.host.postedTo(12)) != 1 {
			t.Errorf("gate = %+v, comments %q", g, e.host.postedTo(12))
		}
	})
	t.Run("a merge webhook after the ask", func(t *testing.T) {
		e := newEnv(t, newMemStore(), nil)
		e.host.bb.SetLinkIndex(testRepo, bitbuckettest.IndexMissing) // no commit-links index: lookups answer 404
		merge := hex40(22)
		g := mustAsk(t, e, ask(merge, "production"), true)
		if g.State != store.GatePending || len(g.PRs) != 0 || g.Notified {
			t.Fatalf("gate = %+v", g)
		}
		// A payload naming the merge commit is only a hint: the pull request
		// is read again, and its author excluded.
		e.host.addPR(13, "acc-bo", hex40(130))
		e.host.approve(13, "acc-bo")
		e.host.merge(13, merge)
		e.clk.add(time.Minute)
		ev := prEvent(model.EventPRMerged, 13)
		ev.PullRequest.MergeCommit = merge[:12]
		if err := e.svc.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
		g, _ = e.svc.Get(ctx, g.ID)
		if g.State != store.GatePending || len(g.PRs) != 1 || strings.Join(g.Approvers, ",") != "acc-ana" || len(e.host.postedTo(13)) != 1 {
			t.Errorf("gate = %+v, comments %q", g, e.host.postedTo(13))
		}
		// A lying payload (its merge commit is another) finds nothing.
		e.host.addPR(14, "acc-tom", hex40(140))
		e.host.approve(14, "acc-ana")
		e.host.merge(14, hex40(23))
		g5 := mustAsk(t, e, ask(hex40(24), "production"), true)
		ev = prEvent(model.EventPRApproved, 14)
		ev.PullRequest.MergeCommit = hex40(24)[:12]
		if err := e.svc.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if g5, _ = e.svc.Refresh(ctx, g5.ID); g5.State != store.GatePending || len(g5.PRs) != 0 {
			t.Errorf("gate opened on a payload's word: %+v", g5)
		}
	})
}

func TestServiceUpstreamTrouble(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, newMemStore(), nil)
	merge := hex40(5)
	e.host.addPR(6, "acc-tom", hex40(60))
	e.host.merge(6, merge)
	e.host.bb.Fail(bitbuckettest.Fault{Status: 503, Times: 1 << 20}) // Bitbucket is down

	g := mustAsk(t, e, ask(merge, "production"), true) // stored, though Bitbucket is down
	if g.State != store.GatePending || len(readDetails(g).History) == 0 {
		t.Fatalf("gate = %+v", g)
	}
	var up *UpstreamError
	if _, err := e.svc.Refresh(ctx, g.ID); !errors.As(err, &up) || !up.Temporary() {
		t.Errorf("refresh while Bitbucket is down: %v (want a temporary error)", err)
	}
	if err := e.svc.Handle(ctx, prEvent(model.EventPRApproved, 6)); err != nil {
		t.Errorf("no gate knows #6 yet: %v", err)
	}
	e.clk.add(time.Minute)
	if g2, err := e.svc.Get(ctx, g.ID); err != nil || g2.State != store.GatePending {
		t.Errorf("get while Bitbucket is down: %+v %v", g2, err)
	}
	// Bitbucket is back: the next read finds the pull request, mentions, and
	// posts the status that failed.
	e.host.bb.ClearFaults()
	e.clk.add(time.Minute)
	g, _ = e.svc.Get(ctx, g.ID)
	if len(g.PRs) != 1 || len(e.host.postedTo(6)) != 1 || e.host.status(merge, "production").State != "INPROGRESS" {
		t.Errorf("after recovery: %+v, comments %q, status %+v", g, e.host.postedTo(6), e.host.status(merge, "production"))
	}
}

func TestServiceGetRateLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, newMemStore(), nil) // MinRefresh: the default
	merge := hex40(6)
	e.host.addPR(2, "acc-tom", hex40(20))
	e.host.merge(2, merge)
	g := mustAsk(t, e, ask(merge, "production"), true)
	calls := e.host.callCount()
	e.clk.add(10 * time.Second)
	e.svc.Get(ctx, g.ID)
	if e.host.callCount() != calls {
		t.Errorf("polling within MinRefresh re-read Bitbucket (%d calls)", e.host.callCount()-calls)
	}
	e.clk.add(30 * time.Second)
	e.svc.Get(ctx, g.ID)
	if e.host.callCount() == calls {
		t.Errorf("polling after MinRefresh did not re-read Bitbucket")
	}
}

func TestServiceDryRun(t *testing.T) {
	ctx := context.Background()
	ms := newMemStore()
	e := newEnv(t, ms, func(o *Options) { o.DryRun = true })
	merge := hex40(7)
	e.host.addPR(1, "acc-ana", hex40(10))
	e.host.merge(1, merge)
	g := mustAsk(t, e, ask(merge, "production"), true)
	e.host.say(1, "acc-mei", "/approve-deploy production")
	e.clk.add(time.Minute)
	e.svc.Get(ctx, g.ID)
	g, err := e.svc.BreakGlass(ctx, g.ID, "acc-raj", "trying it out")
	if err != nil || g.State != store.GateApproved {
		t.Fatalf("dry-run break-glass: %+v %v", g, err)
	}
	comments, statuses := e.host.bb.Comments(testRepo, 1), e.host.bb.Statuses(testRepo, merge)
	if len(comments) != 1 || len(statuses) != 0 || len(e.fu.created) != 0 {
		t.Errorf("dry run wrote upstream: comments %v statuses %v follow-ups %q", comments, statuses, e.fu.created)
	}
	if d := ms.decisionsOf(g.ID); len(d) != 2 || d[1].Outcome != "dry-run: nothing posted upstream" {
		t.Errorf("decisions = %+v", d)
	}
	if len(ms.findings) != 1 {
		t.Errorf("findings = %v", ms.findings)
	}
}

func TestAskBadInput(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := newEnv(t, st, nil)
	merge := hex40(8)
	for _, tt := range []struct {
		req  AskRequest
		want error
	}{
		{AskRequest{Repository: "reloadly/nope", Commit: merge, Environment: "production"}, ErrUnknownRepository},
		{AskRequest{Repository: "payments-api", Commit: merge, Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: "", Commit: merge, Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: "xyz1234", Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: "abc12", Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge[:7], Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge[:12], Environment: "production"}, ErrBadRequest}, // as payloads carry
		{AskRequest{Repository: testRepo, Commit: merge[:39], Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge, Environment: "staging"}, ErrUnknownEnvironment},
		{AskRequest{Repository: testRepo, Commit: merge + "0", Environment: "production"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge, Environment: ""}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge, Environment: "prod uction"}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge, Environment: strings.Repeat("p", 65)}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge, Environment: "production", BuildNumber: -1}, ErrBadRequest},
		{AskRequest{Repository: testRepo, Commit: merge, Environment: "production", PipelineUUID: "a\nb"}, ErrBadRequest},
	} {
		if _, _, err := e.svc.Ask(ctx, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("Ask(%+v) = %v, want %v", tt.req, err, tt.want)
		}
	}
	if gates, _ := st.ListGates(ctx, store.GateFilter{}); len(gates) != 0 || e.host.callCount() != 0 {
		t.Errorf("bad input stored %d gates and made %d calls", len(gates), e.host.callCount())
	}
	if d, _ := st.ListDecisions(ctx, store.DecisionFilter{}); len(d) != 0 {
		t.Errorf("bad input recorded %d decisions", len(d))
	}
}

func TestAskConcurrently(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, st, nil)
	merge := hex40(9)
	e.host.addPR(1, "acc-ana", hex40(10))
	e.host.merge(1, merge)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	created := make([]bool, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, c, err := e.svc.Ask(context.Background(), ask(merge, "production"))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = g.ID, c
		}()
	}
	wg.Wait()
	n := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Errorf("asks got gates %v", ids)
		}
		if created[i] {
			n++
		}
	}
	if n != 1 || len(e.host.postedTo(1)) != 1 {
		t.Errorf("%d asks created a gate, %d mentions; want 1 and 1", n, len(e.host.postedTo(1)))
	}
}

// TestReplyNamesPeople: a refused command's reply mentions its author by
// account id, and names people by their roles.yaml name in the reason;
// someone not in roles.yaml is named by a mention, which Bitbucket shows
// as their name.
func TestReplyNamesPeople(t *testing.T) {
	e := newEnv(t, openStore(t), nil)
	for _, c := range []struct{ acc, text, want string }{
		{"acc-mei", "`/approve-deploy production` changes nothing: account acc-mei does not hold product-owner",
			"@{acc-mei} your `/approve-deploy production` changes nothing: Mei Chen does not hold product-owner."},
		{"557058:0d3f8b9c-71a2-4e5f-b6c3-9a8d7e6f5a4b", "`/approve-deploy production` changes nothing: account 557058:0d3f8b9c-71a2-4e5f-b6c3-9a8d7e6f5a4b authored a pull request",
			"@{557058:0d3f8b9c-71a2-4e5f-b6c3-9a8d7e6f5a4b} your `/approve-deploy production` changes nothing: @{557058:0d3f8b9c-71a2-4e5f-b6c3-9a8d7e6f5a4b} authored a pull request."},
	} {
		if got := e.svc.replyText(Effect{Kind: EffReply, Account: c.acc, Text: c.text}); got != c.want {
			t.Errorf("reply = %q\nwant    %q", got, c.want)
		}
	}
}
