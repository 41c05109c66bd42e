package storetest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Exec runs one SQL statement on the store's database behind its back: the
// tampering a person with write access to the database could do. The
// statements used are the same in SQLite and PostgreSQL.
type Exec func(t *testing.T, s store.Store, sql string)

// RunEvidence runs the evidence suite: the chain the store's writes build,
// and verification catching every kind of tampering. open returns a new,
// empty store; exec tampers with its database.
func RunEvidence(t *testing.T, open func(t *testing.T) store.Store, exec Exec) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, exec Exec)
	}{
		{"WritesAppendInOrder", testEvidenceWrites},
		{"Tampering", nil},
		{"SignedCheckpointCatchesRewrite", testEvidenceRewrite},
		{"PruneKeepsChain", testEvidencePrune},
		{"Span", testEvidenceSpan},
		{"TimesInChainOrder", testEvidenceTimeOrder},
		{"ConcurrentAppends", testEvidenceConcurrent},
		{"BreakIsRecordedAndAppendsGoOn", testEvidenceBreak},
		{"RowsMatchRecords", testEvidenceRows},
	}
	for _, tc := range tests {
		if tc.fn == nil {
			t.Run(tc.name, func(t *testing.T) { testEvidenceTampering(t, open, exec) })
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s, exec)
		})
	}
}

var evBase = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// fillEvidence makes six records through the store's writes: a decision,
// its outcome, a finding, a gate asked, approved with break-glass, and a
// roles version.
func fillEvidence(t *testing.T, s store.Store) {
	t.Helper()
	ctx := ctxT(t)
	d := &store.DecisionRecord{Kind: model.SubjectPullRequest, Repository: "acme/pay", PR: 7, Summary: "asked amara",
		Decision: json.RawMessage(`{"reasons":["amara: technical lead of team payments, fewest open reviews"],"status":"waiting"}`),
		Snapshot: json.RawMessage(`{"pr":7}`), CreatedAt: evBase}
	id, err := s.SaveDecision(ctx, d)
	must(t, err, "SaveDecision")
	must(t, s.SetOutcome(ctx, id, "requested 1 reviewer"), "SetOutcome")
	f := model.Finding{Key: "merge-unapproved:acme/pay#7", Kind: "code-review", Subject: model.SubjectPullRequest,
		Ref: "acme/pay#7", Reason: "merged without approval", OccurredAt: evBase.Add(time.Minute)}
	_, err = s.AddFinding(ctx, f)
	must(t, err, "AddFinding")
	stored, err := s.AddFinding(ctx, f)
	must(t, err, "AddFinding again")
	if stored {
		t.Fatalf("a duplicate finding was stored")
	}
	g := &store.Gate{ID: "g1", DedupeKey: "k1", Repository: "acme/pay", Commit: strings.Repeat("a", 40), Environment: "production",
		State: store.GatePending, Approvers: []string{"acc:po"}, CreatedAt: evBase.Add(2 * time.Minute), ExpiresAt: evBase.Add(24 * time.Hour)}
	must(t, s.CreateGate(ctx, g), "CreateGate")
	g.State, g.BreakGlass, g.DecidedBy, g.Reason, g.DecidedAt = store.GateApproved, true, "acc:cto", "outage", evBase.Add(3*time.Minute)
	must(t, s.UpdateGate(ctx, g), "UpdateGate")
	_, err = s.AppendEvidence(ctx, evidence.KindRoles, evBase.Add(4*time.Minute), map[string]any{"sha256": "abc"})
	must(t, err, "AppendEvidence")
}

func verifyStore(t *testing.T, s store.Store, pinned ed25519.PublicKey) evidence.Result {
	t.Helper()
	res, err := evidence.VerifySource(ctxT(t), s, pinned)
	must(t, err, "VerifySource")
	return res
}

func scanAll(t *testing.T, s store.Store) []evidence.Record {
	t.Helper()
	var out []evidence.Record
	must(t, s.ScanEvidence(ctxT(t), 0, 0, func(r evidence.Record) bool { out = append(out, r); return true }), "ScanEvidence")
	return out
}

func testEvidenceWrites(t *testing.T, s store.Store, _ Exec) {
	head, err := s.EvidenceHead(ctxT(t))
	must(t, err, "EvidenceHead")
	same(t, "empty head", head, evidence.Genesis())
	fillEvidence(t, s)
	recs := scanAll(t, s)
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	same(t, "kinds", kinds, []string{evidence.KindDecision, evidence.KindDecisionOutcome, evidence.KindFinding,
		evidence.KindGateAsked, evidence.KindGateBreakGlass, evidence.KindRoles})
	if !strings.Contains(string(recs[0].Content), `"reasons":["amara: technical lead`) {
		t.Errorf("the decision's record lacks its reasons: %s", recs[0].Content)
	}
	if !strings.Contains(string(recs[4].Content), `"decided_by":"acc:cto"`) || !strings.Contains(string(recs[4].Content), `"reason":"outage"`) {
		t.Errorf("the break-glass record lacks who and why: %s", recs[4].Content)
	}
	head, err = s.EvidenceHead(ctxT(t))
	must(t, err, "EvidenceHead")
	same(t, "head", head, recs[5].Head())
	res := verifyStore(t, s, nil)
	if !res.OK() || res.Records != 6 {
		t.Fatalf("verify: %+v %v", res, res.Problem)
	}
	// A failed write appends nothing.
	if err := s.SetOutcome(ctxT(t), 9999, "x"); err == nil {
		t.Fatalf("SetOutcome of an unknown decision succeeded")
	}
	if n := len(scanAll(t, s)); n != 6 {
		t.Errorf("a failed write appended: %d records", n)
	}
}

// testEvidenceTampering: each change a database writer could make is named
// by verify at the right record.
func testEvidenceTampering(t *testing.T, open func(t *testing.T) store.Store, exec Exec) {
	cases := []struct {
		name    string
		sql     []string
		seq     int64
		kind    string
		problem string
	}{
		{"EditContent", []string{`UPDATE evidence SET content = replace(content, 'amara', 'kofi') WHERE seq = 1`}, 1, evidence.KindDecision, "edited"},
		{"EditWhoBrokeGlass", []string{`UPDATE evidence SET content = replace(content, 'acc:cto', 'acc:po') WHERE seq = 5`}, 5, evidence.KindGateBreakGlass, "edited"},
		{"EditTime", []string{`UPDATE evidence SET at = '2026-11-30T09:00:00Z' WHERE seq = 3`}, 3, evidence.KindFinding, "edited"},
		{"DeleteMiddle", []string{`DELETE FROM evidence WHERE seq = 3`}, 3, "", "missing"},
		{"DeleteFirst", []string{`DELETE FROM evidence WHERE seq = 1`}, 1, "", "missing"},
		{"DeleteLast", []string{`DELETE FROM evidence WHERE seq = 6`}, 6, evidence.KindRoles, "missing"},
		{"Reorder", []string{
			`UPDATE evidence SET seq = 100 WHERE seq = 2`,
			`UPDATE evidence SET seq = 2 WHERE seq = 3`,
			`UPDATE evidence SET seq = 3 WHERE seq = 100`}, 2, evidence.KindFinding, "edited"},
		{"InsertAtEnd", []string{`INSERT INTO evidence (seq, kind, at, at_ns, content, prev, hash)
			SELECT 7, 'decision', at, at_ns, content, hash, hash FROM evidence WHERE seq = 6`}, 7, evidence.KindDecision, "inserted"},
		{"InsertInMiddle", []string{
			`UPDATE evidence SET seq = seq + 100 WHERE seq >= 4`,
			`UPDATE evidence SET seq = seq - 99 WHERE seq >= 104`,
			`INSERT INTO evidence (seq, kind, at, at_ns, content, prev, hash)
			SELECT 4, kind, at, at_ns, content, hash, hash FROM evidence WHERE seq = 3`,
			`UPDATE evidence_head SET seq = 7`}, 4, evidence.KindFinding, "edited"},
		{"HeadRolledBack", []string{`UPDATE evidence_head SET seq = 5, hash = (SELECT hash FROM evidence WHERE seq = 5)`}, 6, evidence.KindRoles, "after the stored head"},
		{"HeadHashEdited", []string{`UPDATE evidence_head SET hash = replace(hash, substr(hash, 1, 1), 'x')`}, 6, evidence.KindRoles, "head's hash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { s.Close() })
			fillEvidence(t, s)
			if res := verifyStore(t, s, nil); !res.OK() {
				t.Fatalf("intact chain reported broken: %v", res.Problem)
			}
			for _, q := range tc.sql {
				exec(t, s, q)
			}
			res := verifyStore(t, s, nil)
			if res.OK() {
				t.Fatalf("verify found nothing after %s", tc.name)
			}
			p := res.Problem
			if p.Seq != tc.seq || p.Kind != tc.kind || !strings.Contains(p.What, tc.problem) {
				t.Errorf("problem %q (seq %d, kind %q), want seq %d, kind %q, containing %q", p.Error(), p.Seq, p.Kind, tc.seq, tc.kind, tc.problem)
			}
		})
	}
}

// testEvidenceRewrite: someone who rewrites the whole chain consistently
// (every hash recomputed, head moved) is caught by an earlier signed
// checkpoint, and a forged signature by the pinned key.
func testEvidenceRewrite(t *testing.T, s store.Store, exec Exec) {
	ctx := ctxT(t)
	_, priv, _ := ed25519.GenerateKey(nil)
	signer, err := evidence.ParsePrivateKey(encodeKey(priv))
	must(t, err, "ParsePrivateKey")
	fillEvidence(t, s)
	head, err := s.EvidenceHead(ctx)
	must(t, err, "EvidenceHead")
	must(t, s.AddCheckpoint(ctx, signer.NewCheckpoint(head, evBase.Add(time.Hour), evidence.ReasonScheduled, "")), "AddCheckpoint")
	if res := verifyStore(t, s, signer.PublicKey()); !res.OK() || res.Signed != 1 {
		t.Fatalf("signed chain: %+v %v", res, res.Problem)
	}
	// Rewrite record 5 and every hash after it, as a careful forger would.
	recs := scanAll(t, s)
	prev := recs[3].Head()
	for _, r := range recs[4:] {
		content := strings.ReplaceAll(string(r.Content), "acc:cto", "acc:po")
		at, _ := evidence.ParseTime(r.Time)
		nr, err := evidence.Link(prev, r.Kind, at, json.RawMessage(content))
		must(t, err, "Link")
		exec(t, s, fmt.Sprintf(`UPDATE evidence SET content = '%s', prev = '%s', hash = '%s' WHERE seq = %d`,
			strings.ReplaceAll(string(nr.Content), "'", "''"), nr.Prev, nr.Hash, nr.Seq))
		prev = nr.Head()
	}
	exec(t, s, fmt.Sprintf(`UPDATE evidence_head SET hash = '%s'`, prev.Hash))
	res := verifyStore(t, s, signer.PublicKey())
	if res.OK() || res.Problem.Seq != 6 || !strings.Contains(res.Problem.What, "checkpoint") {
		t.Fatalf("a consistent rewrite under a signed checkpoint: %+v %v", res, res.Problem)
	}
	// The forger also replaces the checkpoint, signed with another key.
	_, other, _ := ed25519.GenerateKey(nil)
	forger, _ := evidence.ParsePrivateKey(encodeKey(other))
	exec(t, s, `DELETE FROM evidence_checkpoints`)
	must(t, s.AddCheckpoint(ctx, forger.NewCheckpoint(prev, evBase.Add(time.Hour), evidence.ReasonScheduled, "")), "AddCheckpoint")
	res = verifyStore(t, s, signer.PublicKey())
	if res.OK() || !strings.Contains(res.Problem.What, "not the given key") {
		t.Fatalf("a checkpoint signed with another key: %+v %v", res, res.Problem)
	}
}

func testEvidencePrune(t *testing.T, s store.Store, exec Exec) {
	ctx := ctxT(t)
	for i := range 10 {
		_, err := s.AppendEvidence(ctx, evidence.KindRoles, evBase.Add(time.Duration(i)*time.Hour), map[string]any{"i": i})
		must(t, err, "AppendEvidence")
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	signer, _ := evidence.ParsePrivateKey(encodeKey(priv))
	k, err := evidence.NewKeeper(evidence.KeeperOptions{Log: s, Signer: signer, Now: func() time.Time { return evBase.Add(48 * time.Hour) }})
	must(t, err, "NewKeeper")
	n, err := k.Prune(ctx, evBase.Add(4*time.Hour)) // records at 0h…3h go
	must(t, err, "Prune")
	if n != 4 {
		t.Fatalf("pruned %d records, want 4", n)
	}
	res := verifyStore(t, s, signer.PublicKey())
	if !res.OK() || res.First != 5 || res.Records != 6 {
		t.Fatalf("after pruning: %+v %v", res, res.Problem)
	}
	if n, err := k.Prune(ctx, evBase.Add(4*time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruning again: %d %v", n, err)
	}
	before, last, err := s.EvidenceSpan(ctx, evBase, evBase.Add(6*time.Hour))
	must(t, err, "EvidenceSpan")
	if before.Seq != 4 || last.Seq != 6 {
		t.Errorf("span across the cut: before %d last %d, want 4 and 6", before.Seq, last.Seq)
	}
	// Without the checkpoint at the cut, the missing records are named.
	exec(t, s, `DELETE FROM evidence_checkpoints`)
	res = verifyStore(t, s, nil)
	if res.OK() || res.Problem.Seq != 4 || !strings.Contains(res.Problem.What, "retention cut") {
		t.Fatalf("pruned chain without its cut: %+v %v", res, res.Problem)
	}
}

func testEvidenceSpan(t *testing.T, s store.Store, _ Exec) {
	ctx := ctxT(t)
	for i := range 6 {
		_, err := s.AppendEvidence(ctx, evidence.KindRoles, evBase.Add(time.Duration(i)*24*time.Hour), map[string]any{"i": i})
		must(t, err, "AppendEvidence")
	}
	recs := scanAll(t, s)
	before, last, err := s.EvidenceSpan(ctx, evBase.Add(36*time.Hour), evBase.Add(96*time.Hour)) // days 2, 3
	must(t, err, "EvidenceSpan")
	same(t, "span", []evidence.Head{before, last}, []evidence.Head{recs[1].Head(), recs[3].Head()})
	before, last, err = s.EvidenceSpan(ctx, evBase.Add(-time.Hour), evBase.Add(-time.Minute))
	must(t, err, "EvidenceSpan")
	same(t, "empty span", []evidence.Head{before, last}, []evidence.Head{evidence.Genesis(), evidence.Genesis()})
}

func testEvidenceConcurrent(t *testing.T, s store.Store, _ Exec) {
	ConcurrentAppends(t, []store.Store{s, s, s}, 30)
}

// ConcurrentAppends saves n decisions through each store at once (the same
// store, or replicas on one database) and checks that they make one chain.
func ConcurrentAppends(t *testing.T, stores []store.Store, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*n)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				d := &store.DecisionRecord{Kind: model.SubjectPullRequest, Repository: "acme/pay", PR: i*1000 + j,
					Summary: "concurrent", CreatedAt: evBase.Add(time.Duration(j) * time.Second)}
				if _, err := s.SaveDecision(context.Background(), d); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("SaveDecision: %v", err)
	}
	res := verifyStore(t, stores[0], nil)
	if !res.OK() || res.Records != int64(len(stores)*n) {
		t.Fatalf("concurrent appends: %d records, want %d: %v", res.Records, len(stores)*n, res.Problem)
	}
}

// testEvidenceBreak: a broken chain is reported once in the chain itself,
// the gauge says so, and the store's writes go on.
func testEvidenceBreak(t *testing.T, s store.Store, exec Exec) {
	ctx := ctxT(t)
	fillEvidence(t, s)
	k, err := evidence.NewKeeper(evidence.KeeperOptions{Log: s, Now: func() time.Time { return evBase.Add(time.Hour) }})
	must(t, err, "NewKeeper")
	exec(t, s, `UPDATE evidence SET content = replace(content, 'outage', 'planned') WHERE seq = 5`)
	for range 2 {
		res, err := k.Check(ctx)
		must(t, err, "Check")
		if res.OK() || res.Problem.Seq != 5 {
			t.Fatalf("Check: %+v", res)
		}
	}
	if ok, detail := k.Status(); ok || !strings.Contains(detail, "BROKEN at record 5") {
		t.Errorf("status: %v %s", ok, detail)
	}
	recs := scanAll(t, s)
	breaks := 0
	for _, r := range recs {
		if r.Kind == evidence.KindChainBreak {
			breaks++
		}
	}
	if breaks != 1 || recs[len(recs)-1].Kind != evidence.KindChainBreak {
		t.Fatalf("%d chain.break records, want 1 at the end", breaks)
	}
	_, err = s.SaveDecision(ctx, &store.DecisionRecord{Kind: model.SubjectPullRequest, Summary: "after", CreatedAt: evBase.Add(2 * time.Hour)})
	must(t, err, "SaveDecision after a break")
	res := verifyStore(t, s, nil)
	if res.Problem == nil || res.Problem.Seq != 5 {
		t.Fatalf("the break must stay visible: %v", res.Problem)
	}
	// A second keeper (a restarted daemon) does not record it again.
	k2, _ := evidence.NewKeeper(evidence.KeeperOptions{Log: s, Now: time.Now})
	_, err = k2.Check(ctx)
	must(t, err, "Check after restart")
	if n := len(scanAll(t, s)); n != len(recs)+1 {
		t.Errorf("%d records after a restarted check, want %d", n, len(recs)+1)
	}
}

func encodeKey(k ed25519.PrivateKey) string {
	return evidence.EncodePublicKey(ed25519.PublicKey(k)) // standard base64 of the 64 bytes
}

// testEvidenceRows: a row changed in its table behind the chain's back (the
// chain intact) is named by CheckRows with the record it contradicts.
func testEvidenceRows(t *testing.T, s store.Store, exec Exec) {
	ctx := ctxT(t)
	fillEvidence(t, s)
	p, err := store.CheckRows(ctx, s)
	must(t, err, "CheckRows")
	if p != nil {
		t.Fatalf("untouched rows: %v", p)
	}
	steps := []struct {
		sql  string
		row  string
		seq  int64
		what string
	}{
		{`UPDATE gates SET decided_by = 'acc:po' WHERE id = 'g1'`, "gate g1", 5, "differs from its last record"},
		{`UPDATE findings SET reason = 'fine'`, "finding merge-unapproved:acme/pay#7", 3, "differs"},
		{`UPDATE decisions SET outcome = 'nothing'`, "decision 1", 1, "outcome"},
		{`UPDATE decisions SET summary = 'asked kofi'`, "decision 1", 1, "differs"},
	}
	for _, st := range steps {
		exec(t, s, st.sql)
		p, err := store.CheckRows(ctx, s)
		must(t, err, "CheckRows")
		if p == nil || p.Row != st.row || p.Seq != st.seq || !strings.Contains(p.What, st.what) {
			t.Errorf("after %s: %v, want %s at record %d", st.sql, p, st.row, st.seq)
		}
	}
	if res := verifyStore(t, s, nil); !res.OK() {
		t.Errorf("the chain itself is intact, verify said %v", res.Problem)
	}
	// A decision inserted without its record.
	exec(t, s, `DELETE FROM evidence WHERE seq > 0`)
	exec(t, s, `UPDATE evidence_head SET seq = 0, hash = '`+evidence.GenesisHash+`'`)
	_, err = s.SaveDecision(ctx, &store.DecisionRecord{Kind: model.SubjectPullRequest, Summary: "first after", CreatedAt: evBase})
	must(t, err, "SaveDecision")
	exec(t, s, `INSERT INTO decisions (public_id, kind, repository, pr, commit_sha, issue_key, team, trigger_event, delivery_id, summary, outcome, created_at)
		SELECT '0123456789abcdef0123456789abcdef', kind, repository, pr, commit_sha, issue_key, team, trigger_event, delivery_id, 'forged', outcome, created_at FROM decisions WHERE summary = 'first after'`)
	p, err = store.CheckRows(ctx, s)
	must(t, err, "CheckRows")
	if p == nil || p.Row != "decision 3" || !strings.Contains(p.What, "no record") {
		t.Errorf("inserted decision: %v", p)
	}
}

// testEvidenceTimeOrder: a write that carries no time of its own (an
// outcome, timed by the wall clock) after a decision timed later (a
// simulated or skewed clock) is timed no earlier than the decision, so the
// decision's week holds both and the span is one run of sequence numbers.
func testEvidenceTimeOrder(t *testing.T, s store.Store, _ Exec) {
	ctx := context.Background()
	later := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Millisecond)
	d := &store.DecisionRecord{Kind: model.SubjectPullRequest, Summary: "from a clock ahead", CreatedAt: later}
	id, err := s.SaveDecision(ctx, d)
	must(t, err, "SaveDecision")
	must(t, s.SetOutcome(ctx, id, "done"), "SetOutcome")
	var times []time.Time
	err = s.ScanEvidence(ctx, 1, 0, func(r evidence.Record) bool {
		at, perr := time.Parse(time.RFC3339Nano, r.Time)
		if perr != nil {
			t.Errorf("record %d time %q: %v", r.Seq, r.Time, perr)
		}
		times = append(times, at)
		return true
	})
	must(t, err, "ScanEvidence")
	if len(times) != 2 {
		t.Fatalf("records = %d, want 2", len(times))
	}
	if times[1].Before(times[0]) {
		t.Errorf("outcome timed %v before its decision %v", times[1], times[0])
	}
	before, last, err := s.EvidenceSpan(ctx, later.Add(-time.Hour), later.Add(time.Hour))
	must(t, err, "EvidenceSpan")
	if before.Seq != 0 || last.Seq != 2 {
		t.Errorf("span = %d..%d, want records 1–2 (before 0, last 2)", before.Seq, last.Seq)
	}
}
