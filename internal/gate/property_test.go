package gate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// The property: whatever people do in Bitbucket — approve, withdraw,
// comment anything, push new commits (onto their own branch or a
// colleague's), merge, decline — and whatever the pipelines (full hashes,
// short ones, twins sharing a 12-hex prefix, environments no rule lists),
// webhooks (truthful, lying, relabelled or replayed out of order), the
// clock and restarts do, a gate is approved only by a product owner of the
// team who wrote none of the change (no pull request and no commit on it),
// on the strength of an approval given after the pull request's last push
// and present on (or an /approve-deploy on) a pull request carrying the
// commit while the gate waited; or by a CTO's /break-glass comment, or a
// break-glass through the admin token naming a CTO, with a reason. A gate
// is never stored for a short commit or an environment no rule lists. The
// oracle below is written apart from the code under test: it keeps its own
// log of what happened and parses commands itself.

var (
	propPeople   = []string{"acc-ana", "acc-bo", "acc-mei", "acc-tom", "acc-raj", "acc-stranger"}
	propAuthors  = []string{"acc-ana", "acc-bo", "acc-mei", "acc-tom"}
	propComments = []string{
		"/approve-deploy production", "/Approve-Deploy PRODUCTION", "/approve-deploy staging",
		"/reject-deploy production not now", "/reject-deploy production",
		"/break-glass production outage", "/break-glass production", "/break-glass staging fire",
		"LGTM", "/approve-deploy", "please /approve-deploy production", "> /approve-deploy production",
		"Looks fine.\n/approve-deploy production\n/reject-deploy production second thoughts",
	}
	propEventKinds = []model.EventKind{model.EventPRApproved, model.EventPRUnapproved, model.EventPRComment,
		model.EventPRMerged, model.EventPRDeclined, model.EventPRPushed, model.EventIssueCreated}
)

type span struct {
	pr       int
	who      string
	from, to time.Time // to: zero while present
}

type said struct {
	pr   int
	who  string
	body string
	at   time.Time
}

type glassCall struct {
	gate, who, reason string
	at                time.Time
}

type prShape struct {
	at       time.Time
	state    model.PRState
	head     string
	commit   []string  // every head it had, and its merge commit
	merge    string    // its merge commit, once merged
	authors  []string  // who pushed its commits (its author first)
	pushedAt time.Time // its last push (creation counts)
}

type propWorld struct {
	t    *testing.T
	seed int64
	rng  *rand.Rand
	e    *env

	nextHash int
	prs      []int
	author   map[int]string
	shapes   map[int][]prShape
	spans    []span
	said     []said
	glass    []glassCall
	commits  []string
	pushedBy map[string]string // commit → who wrote it (the pusher)
	events   []*model.Event    // delivered, to replay out of order

	stats map[string]int
}

func (w *propWorld) shape(pr int, at time.Time) prShape {
	var cur prShape
	for _, s := range w.shapes[pr] {
		if !s.at.After(at) {
			cur = s
		}
	}
	return cur
}

func (w *propWorld) contains(pr int, commit string) bool {
	sh := w.shapes[pr]
	return len(sh) > 0 && slices.Contains(sh[len(sh)-1].commit, commit)
}

func (w *propWorld) carriesAt(pr int, commit string, at time.Time) bool {
	s := w.shape(pr, at)
	return (s.state == model.PRMerged && (s.head == commit || s.merge == commit)) || (s.state == model.PROpen && s.head == commit)
}

func (w *propWorld) newHash() string {
	w.nextHash++
	h := hex40(1000*int(w.seed%1000) + w.nextHash)
	w.commits = append(w.commits, h)
	return h
}

func (w *propWorld) reshape(pr int, change func(*prShape)) {
	sh := w.shapes[pr]
	s := sh[len(sh)-1]
	s.commit = slices.Clone(s.commit)
	s.at = w.e.clk.now()
	change(&s)
	w.shapes[pr] = append(sh, s)
}

// record keeps rolekeeper's own record of a pull request, as the review
// flow does, with the short hashes payloads carry: the gate finds
// candidates there by prefix and must check them by full hash.
func (w *propWorld) record(pr int) {
	sh := w.shapes[pr][len(w.shapes[pr])-1]
	rec := store.PRRecord{Repository: testRepo, ID: pr, AuthorAccountID: w.author[pr], State: sh.state, SourceCommit: sh.head[:12]}
	if sh.state == model.PRMerged {
		rec.MergeCommit = sh.commit[len(sh.commit)-1][:12]
	}
	switch st := w.e.st.(type) {
	case *memStore:
		st.mu.Lock()
		st.prs = slices.DeleteFunc(st.prs, func(r store.PRRecord) bool { return r.ID == pr })
		st.prs = append(st.prs, rec)
		st.mu.Unlock()
	case interface {
		UpsertPR(context.Context, *store.PRRecord) error
	}:
		if err := st.UpsertPR(context.Background(), &rec); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *propWorld) pick(xs []int) (int, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	return xs[w.rng.Intn(len(xs))], true
}

func (w *propWorld) open() []int {
	var out []int
	for _, id := range w.prs {
		if w.shape(id, w.e.clk.now()).state == model.PROpen {
			out = append(out, id)
		}
	}
	return out
}

func (w *propWorld) gates() []store.Gate {
	gs, err := w.e.st.ListGates(context.Background(), store.GateFilter{})
	if err != nil {
		w.t.Fatal(err)
	}
	return gs
}

// step does one random thing.
func (w *propWorld) step() string {
	ctx := context.Background()
	e, rng := w.e, w.rng
	e.clk.add(time.Minute)
	now := e.clk.now()
	who := propPeople[rng.Intn(len(propPeople))]
	switch r := rng.Intn(100); {
	case r < 14:
		if pr, ok := w.pick(w.prs); ok {
			if !e.host.approve(pr, who) {
				return fmt.Sprintf("%s cannot approve #%d", who, pr)
			}
			// Approving again gives the approval a new date.
			for i := range w.spans {
				if w.spans[i].pr == pr && w.spans[i].who == who && w.spans[i].to.IsZero() {
					w.spans[i].to = now
				}
			}
			w.spans = append(w.spans, span{pr: pr, who: who, from: now})
			return fmt.Sprintf("%s approves #%d", who, pr)
		}
	case r < 20:
		if pr, ok := w.pick(w.prs); ok {
			if !e.host.unapprove(pr, who) {
				return fmt.Sprintf("%s cannot unapprove #%d", who, pr)
			}
			for i := range w.spans {
				if w.spans[i].pr == pr && w.spans[i].who == who && w.spans[i].to.IsZero() {
					w.spans[i].to = now
				}
			}
			return fmt.Sprintf("%s unapproves #%d", who, pr)
		}
	case r < 36:
		if pr, ok := w.pick(w.prs); ok {
			body := propComments[rng.Intn(len(propComments))]
			e.host.say(pr, who, body)
			w.said = append(w.said, said{pr, who, body, now})
			return fmt.Sprintf("%s comments %q on #%d", who, body, pr)
		}
	case r < 42:
		id := len(w.prs) + 1
		author, head := propAuthors[rng.Intn(len(propAuthors))], w.newHash()
		e.host.addPR(id, author, head)
		w.prs, w.author[id] = append(w.prs, id), author
		w.pushedBy[head] = author
		w.shapes[id] = []prShape{{at: now, state: model.PROpen, head: head, commit: []string{head}, authors: []string{author}, pushedAt: now}}
		w.record(id)
		return fmt.Sprintf("%s opens #%d at %s", author, id, short(head))
	case r < 47:
		if pr, ok := w.pick(w.open()); ok {
			head := w.newHash()
			pusher := w.author[pr]
			if rng.Intn(2) == 0 { // someone else pushes onto the branch
				pusher = propAuthors[rng.Intn(len(propAuthors))]
			}
			force := false
			if rng.Intn(3) == 0 { // a twin of the head: the activity shows both by the same 12 hex
				cur := w.shape(pr, now).head
				head = cur[:12] + head[12:]
				w.commits[len(w.commits)-1] = head
				force = rng.Intn(2) == 0 // amended over it, or on top
			}
			e.host.pushBy(pr, head, pusher, force)
			w.reshape(pr, func(s *prShape) {
				if force && len(s.commit) > 0 && s.commit[len(s.commit)-1] == s.head {
					s.commit = s.commit[:len(s.commit)-1]
				}
				s.head, s.commit, s.pushedAt = head, append(s.commit, head), now
				// Who wrote the commits the pull request has now: a commit
				// amended away leaves with its author.
				w.pushedBy[head] = pusher
				s.authors = []string{w.author[pr]}
				for _, c := range s.commit {
					if who := w.pushedBy[c]; who != "" && !slices.Contains(s.authors, who) {
						s.authors = append(s.authors, who)
					}
				}
			})
			w.record(pr)
			return fmt.Sprintf("%s pushes %s to #%d (force %v)", pusher, head[:16], pr, force)
		}
	case r < 52:
		if pr, ok := w.pick(w.open()); ok {
			m := w.newHash()
			e.host.merge(pr, m)
			w.reshape(pr, func(s *prShape) { s.state, s.commit, s.merge = model.PRMerged, append(s.commit, m), m })
			w.record(pr)
			return fmt.Sprintf("merge #%d as %s", pr, short(m))
		}
	case r < 55:
		if pr, ok := w.pick(w.open()); ok {
			e.host.decline(pr)
			w.reshape(pr, func(s *prShape) { s.state = model.PRDeclined })
			return fmt.Sprintf("decline #%d", pr)
		}
	case r < 68:
		commit := hex40(999999)
		if len(w.commits) > 0 && rng.Intn(20) > 0 {
			commit = w.commits[rng.Intn(len(w.commits))]
		}
		switch rng.Intn(12) {
		case 0: // a twin: shares the 12-hex prefix payloads carry, no pull request brought it
			commit = commit[:12] + strings.Repeat("f", 28)
		case 1: // a short hash
			commit = commit[:7+rng.Intn(30)]
		}
		env := []string{"production", "production", "production", "Production", "staging"}[rng.Intn(5)]
		gates := len(w.gates())
		_, _, err := e.svc.Ask(ctx, AskRequest{Repository: testRepo, Commit: commit, Environment: env})
		switch {
		case len(commit) != 40:
			if !errors.Is(err, ErrBadRequest) || len(w.gates()) != gates {
				w.t.Fatalf("seed %d: ask with the short commit %s: %v, %d gates stored", w.seed, commit, err, len(w.gates())-gates)
			}
			w.stats["refused short commit"]++
		case env == "staging":
			if !errors.Is(err, ErrUnknownEnvironment) || len(w.gates()) != gates {
				w.t.Fatalf("seed %d: ask for staging: %v, %d gates stored", w.seed, err, len(w.gates())-gates)
			}
			w.stats["refused unknown environment"]++
		case err != nil:
			w.t.Fatalf("seed %d: ask: %v", w.seed, err)
		}
		return fmt.Sprintf("ask %s %s", short(commit), env)
	case r < 78:
		if gs := w.gates(); len(gs) > 0 {
			g := gs[rng.Intn(len(gs))]
			if _, err := e.svc.Get(ctx, g.ID); err != nil {
				w.t.Fatalf("seed %d: get: %v", w.seed, err)
			}
			return "get " + g.ID
		}
	case r < 84:
		if len(w.events) > 0 && rng.Intn(4) == 0 { // an old delivery, out of order
			ev := w.events[rng.Intn(len(w.events))]
			if err := e.svc.Handle(ctx, ev); err != nil {
				w.t.Fatalf("seed %d: handle: %v", w.seed, err)
			}
			return fmt.Sprintf("replayed webhook %s #%d", ev.Kind, ev.PullRequest.ID)
		}
		ev := &model.Event{Kind: propEventKinds[rng.Intn(len(propEventKinds))], Repository: testRepo,
			PullRequest: &model.PullRequest{ID: rng.Intn(len(w.prs)+2) + 1}, Actor: model.Actor{AccountID: who}}
		if rng.Intn(2) == 0 { // true or a lie, often about a gate's commit
			c := append([]string{hex40(999999)}, w.commits...)
			for _, g := range w.gates() {
				c = append(c, g.Commit, g.Commit)
			}
			ev.PullRequest.MergeCommit = c[rng.Intn(len(c))][:12]
			ev.PullRequest.SourceCommit = c[rng.Intn(len(c))][:12]
		}
		// A body relabelled under another key: an approval or a command
		// the event claims, whatever its kind.
		switch rng.Intn(3) {
		case 0:
			ev.Approval = &model.Approval{AccountID: propPeople[rng.Intn(len(propPeople))], State: model.ReviewApproved}
		case 1:
			ev.Comment = &model.Comment{ID: "999", Author: model.Actor{AccountID: propPeople[rng.Intn(len(propPeople))]},
				Body: propComments[rng.Intn(len(propComments))], CreatedAt: now}
		}
		if err := e.svc.Handle(ctx, ev); err != nil {
			w.t.Fatalf("seed %d: handle: %v", w.seed, err)
		}
		w.events = append(w.events, ev)
		return fmt.Sprintf("webhook %s #%d", ev.Kind, ev.PullRequest.ID)
	case r < 88:
		d := time.Duration(rng.Intn(30)) * time.Hour
		e.clk.add(d)
		return "clock +" + d.String()
	case r < 91:
		e.restart()
		return "restart"
	case r < 95:
		if gs := w.gates(); len(gs) > 0 {
			g := gs[rng.Intn(len(gs))]
			reason := []string{"", "fire", "  ", "hotfix for an outage"}[rng.Intn(4)]
			if _, err := e.svc.BreakGlass(ctx, g.ID, who, reason); err == nil {
				w.glass = append(w.glass, glassCall{g.ID, who, strings.TrimSpace(reason), now})
			}
			return fmt.Sprintf("%s breaks the glass of %s: %q", who, g.ID, reason)
		}
	case r < 98:
		if err := e.svc.ExpireDue(ctx); err != nil {
			w.t.Fatalf("seed %d: expire: %v", w.seed, err)
		}
		return "expire due"
	default:
		if gs := w.gates(); len(gs) > 0 {
			g := gs[rng.Intn(len(gs))]
			if _, err := e.svc.Refresh(ctx, g.ID); err != nil {
				w.t.Fatalf("seed %d: refresh: %v", w.seed, err)
			}
			return "refresh " + g.ID
		}
	}
	return "nothing"
}

// oracleCommand reports whether a body has a command line "/<cmd> <env>
// <reason…>" for env, and its reason.
func oracleCommand(body, cmd, env string) (bool, string) {
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "/"+cmd) && strings.EqualFold(f[1], env) {
			return true, strings.Join(f[2:], " ")
		}
	}
	return false, ""
}

// eligible: a payments product owner who, at that time, had authored no
// pull request carrying the commit and pushed no commit onto one.
func (w *propWorld) eligible(who, commit string, at time.Time) bool {
	if who != "acc-ana" && who != "acc-bo" { // the payments product owners
		return false
	}
	for _, pr := range w.prs {
		s := w.shape(pr, at)
		if slices.Contains(s.commit, commit) && slices.Contains(s.authors, who) {
			return false
		}
	}
	return true
}

// check verifies every stored gate against the oracle's log.
func (w *propWorld) check(history []string) {
	fail := func(g store.Gate, format string, args ...any) {
		w.t.Fatalf("seed %d: gate %s (%s@%s, %s) %s by %s at %v: %s\nsteps:\n  %s", w.seed, g.ID, g.Environment, short(g.Commit), g.State,
			g.Reason, g.DecidedBy, g.DecidedAt, fmt.Sprintf(format, args...), strings.Join(history, "\n  "))
	}
	approved := map[string]bool{}
	for _, g := range w.gates() {
		window := !g.DecidedAt.Before(g.CreatedAt) && g.DecidedAt.Before(g.ExpiresAt)
		switch g.State {
		case store.GateApproved:
			approved[g.Commit+"|"+g.Environment] = true
			switch {
			case g.BreakGlass:
				// By comment, the CTO acted; through the API, the admin
				// token acted and the reason names the CTO.
				if g.DecidedBy != "acc-raj" && g.DecidedBy != AdminToken || strings.TrimSpace(g.Reason) == "" || !window {
					fail(g, "break-glass by a non-CTO, without a reason or outside the window")
				}
				ok := slices.ContainsFunc(w.glass, func(c glassCall) bool {
					return c.gate == g.ID && g.DecidedBy == AdminToken && c.who == "acc-raj" &&
						g.Reason == "via admin token, naming Raj Patel: "+c.reason && c.at.Equal(g.DecidedAt)
				}) || slices.ContainsFunc(w.said, func(s said) bool {
					has, reason := oracleCommand(s.body, "break-glass", g.Environment)
					return has && reason == g.Reason && s.who == g.DecidedBy && s.at.Equal(g.DecidedAt) && w.contains(s.pr, g.Commit)
				})
				if !ok {
					fail(g, "no break-glass by that person for this gate")
				}
				w.stats["break-glass"]++
			case g.DecidedBy == Automatic:
				fail(g, "approved by rolekeeper: every environment asked for is gated")
			default:
				if !w.eligible(g.DecidedBy, g.Commit, g.DecidedAt) || !window {
					fail(g, "approved by someone not eligible, or outside the window")
				}
				// An approval counts only when given after the last push.
				byApproval := slices.ContainsFunc(w.spans, func(s span) bool {
					return s.who == g.DecidedBy && !s.from.After(g.DecidedAt) && (s.to.IsZero() || s.to.After(g.DecidedAt)) &&
						w.carriesAt(s.pr, g.Commit, g.DecidedAt) && s.from.After(w.shape(s.pr, g.DecidedAt).pushedAt)
				})
				byComment := slices.ContainsFunc(w.said, func(s said) bool {
					has, _ := oracleCommand(s.body, "approve-deploy", g.Environment)
					return has && s.who == g.DecidedBy && s.at.Equal(g.DecidedAt) && w.contains(s.pr, g.Commit)
				})
				if !byApproval && !byComment {
					fail(g, "no approval or /approve-deploy by that person on a pull request carrying the commit")
				}
				if byComment {
					w.stats["by comment"]++
				} else {
					w.stats["by approval"]++
				}
			}
		case store.GateRejected:
			ok := slices.ContainsFunc(w.said, func(s said) bool {
				has, _ := oracleCommand(s.body, "reject-deploy", g.Environment)
				return has && s.who == g.DecidedBy && s.at.Equal(g.DecidedAt) && w.contains(s.pr, g.Commit)
			})
			if !ok || !w.eligible(g.DecidedBy, g.Commit, g.DecidedAt) || !window {
				fail(g, "rejected without an eligible /reject-deploy")
			}
			w.stats["rejected"]++
		case store.GateExpired:
			if g.DecidedBy != Automatic || !g.DecidedAt.Equal(g.ExpiresAt) || g.BreakGlass {
				fail(g, "expired wrongly")
			}
			w.stats["expired"]++
		case store.GatePending:
			if !g.DecidedAt.IsZero() || g.DecidedBy != "" || g.BreakGlass {
				fail(g, "pending with a decision")
			}
		}
	}
	// What Bitbucket shows: a green deploy status only for an approved gate.
	for key, st := range w.e.host.statuses() {
		commit, skey, _ := strings.Cut(key, "|")
		env := strings.TrimPrefix(skey, "rolekeeper-deploy-")
		if st.State == "SUCCESSFUL" && !approved[commit+"|"+env] {
			w.t.Fatalf("seed %d: %s shows SUCCESSFUL without an approved gate\nsteps:\n  %s", w.seed, key, strings.Join(history, "\n  "))
		}
	}
}

func runProperty(t *testing.T, seed int64, st Store, steps int, stats map[string]int) {
	w := &propWorld{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), author: map[int]string{}, pushedBy: map[string]string{}, shapes: map[int][]prShape{}, stats: stats}
	w.e = newEnv(t, st, func(o *Options) { o.TTL = time.Duration(1+w.rng.Intn(48)) * time.Hour })
	// Some repositories lack Bitbucket's commit index: pull requests are
	// then found only through webhooks (true or not).
	if w.rng.Intn(4) == 0 {
		w.e.host.bb.SetLinkIndex(testRepo, bitbuckettest.IndexMissing)
	}
	var history []string
	for i := 0; i < steps; i++ {
		history = append(history, w.step())
		w.check(history)
	}
	// Every gate was recorded when asked for, and each decision once.
	if ms, ok := st.(*memStore); ok {
		for _, g := range w.gates() {
			count := map[string]int{}
			for _, d := range ms.decisionsOf(g.ID) {
				count[d.Trigger]++
			}
			want := map[string]int{"gate.asked": 1}
			if g.State != store.GatePending {
				want["gate."+g.State] = 1
			}
			if !maps.Equal(count, want) {
				t.Fatalf("seed %d: gate %s (%s) has decision records %v, want %v\nsteps:\n  %s", seed, g.ID, g.State, count, want, strings.Join(history, "\n  "))
			}
		}
	}
	for _, g := range w.gates() {
		for _, h := range readDetails(&g).History {
			if strings.Contains(h.Detail, "before the last push") {
				stats["stale approval ignored"]++
			}
			if strings.Contains(h.Detail, "authored commit") {
				stats["commit author ignored"]++
			}
		}
	}
	posted := w.e.host.postedAll()
	mentions := map[string]int{}
	for _, g := range w.gates() {
		for _, c := range posted {
			if strings.Contains(c.body, "waits for an approval (gate "+g.ID+")") {
				mentions[fmt.Sprint(c.pr, g.ID)]++
			}
		}
	}
	for k, n := range mentions {
		if n > 1 {
			t.Fatalf("seed %d: %d mentions for pull request and gate %s", seed, n, k)
		}
	}
	for _, c := range posted {
		if strings.Contains(c.body, "changes nothing") {
			stats["refusal replies"]++
		}
		if strings.Contains(c.body, "waits for an approval") {
			stats["mentions"]++
		}
	}
}

// TestPropertyNoGateOpensWithoutEligibleApproval runs hundreds of random
// sequences on the in-memory store, and some on SQLite (where a restart
// really reloads from the database), checking the property after every
// step. The counts at the end show each way of deciding was exercised.
func TestPropertyNoGateOpensWithoutEligibleApproval(t *testing.T) {
	// Every step goes through the real client to the shared fake over
	// loopback: 600 sequences take about 20 s on a loaded machine.
	sequences, onSQLite := 600, 12
	if testing.Short() {
		sequences, onSQLite = 150, 4
	}
	var mu sync.Mutex
	stats := map[string]int{}
	const shards = 4
	t.Run("sequences", func(t *testing.T) {
		for shard := 0; shard < shards; shard++ {
			t.Run(fmt.Sprint(shard), func(t *testing.T) {
				t.Parallel()
				local := map[string]int{}
				for seed := int64(1 + shard); seed <= int64(sequences); seed += shards {
					runProperty(t, seed, newMemStore(), 40, local)
				}
				for seed := int64(1 + shard); seed <= int64(onSQLite); seed += shards {
					runProperty(t, 100000+seed, openStore(t), 60, local)
				}
				mu.Lock()
				defer mu.Unlock()
				for k, v := range local {
					stats[k] += v
				}
			})
		}
	})
	t.Logf("checks of decided gates, by how they were decided, over %d sequences: %v", sequences+onSQLite, stats)
	for _, k := range []string{"by approval", "by comment", "break-glass", "rejected", "expired", "refusal replies", "mentions",
		"refused short commit", "refused unknown environment", "stale approval ignored", "commit author ignored"} {
		if stats[k] == 0 {
			t.Errorf("no sequence produced %q: the property was not exercised", k)
		}
	}
}
