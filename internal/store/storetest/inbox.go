package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

func inboxTests() []test {
	return []test{
		{"EnqueueDedupe", testEnqueueDedupe},
		{"EnqueueRoundTrip", testEnqueueRoundTrip},
		{"EnqueueRejectsIncomplete", testEnqueueRejectsIncomplete},
		{"ClaimOrderLimitDue", testClaimOrderLimitDue},
		{"ClaimReclaimsExpiredLease", testClaimReclaimsExpiredLease},
		{"ClaimConcurrent", testClaimConcurrent},
		{"Complete", testComplete},
		{"CompleteConcurrently", testCompleteConcurrently},
		{"Retry", testRetry},
		{"BuryRedrive", testBuryRedrive},
		{"ListDeliveries", testListDeliveries},
		{"GetDeliveryNotFound", testGetDeliveryNotFound},
		{"InboxStats", testInboxStats},
		{"RenewFenced", testRenewFenced},
		{"StaleHolderLoses", testStaleHolderLoses},
		{"HeartbeatTakeover", testHeartbeatTakeover},
		{"Model", testInboxModel},
		{"Prune", testPrune},
		{"Size", testSize},
	}
}

func delivery(src model.Source, id string, received time.Time) *store.Delivery {
	return &store.Delivery{
		Source:     src,
		DeliveryID: id,
		EventKey:   "pullrequest:created",
		Body:       []byte(`{"id":"` + id + `"}`),
		ReceivedAt: received,
	}
}

// enqueue stores deliveries d-000… received a minute apart from base and
// returns their seqs.
func enqueue(t *testing.T, s store.Store, n int) []int64 {
	t.Helper()
	seqs := make([]int64, n)
	for i := range n {
		d := delivery(model.SourceBitbucket, name("d", i), at(time.Duration(i)*time.Minute))
		ok, err := s.Enqueue(ctxT(t), d)
		must(t, err, "Enqueue")
		if !ok {
			t.Fatalf("Enqueue %s: not inserted", d.DeliveryID)
		}
		seqs[i] = d.Seq
	}
	return seqs
}

// enqueueConcurrently stores n deliveries from several goroutines, all due
// at base, and returns their seqs, which must be distinct.
func enqueueConcurrently(t *testing.T, s store.Store, n, workers int) []int64 {
	t.Helper()
	seqs := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				d := delivery(model.SourceBitbucket, name("c", i), base)
				ok, err := s.Enqueue(ctxT(t), d)
				if err == nil && !ok {
					err = errors.New("not inserted")
				}
				seqs[i], errs[i] = d.Seq, err
			}
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, err := range errs {
		must(t, err, "Enqueue "+name("c", i))
		if seen[seqs[i]] || seqs[i] == 0 {
			t.Fatalf("Enqueue %s: Seq %d repeated or unset", name("c", i), seqs[i])
		}
		seen[seqs[i]] = true
	}
	return seqs
}

func seqsOf(ds []store.Delivery) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func claim(t *testing.T, s store.Store, worker string, now time.Time, lease time.Duration, limit int) []store.Delivery {
	t.Helper()
	ds, err := s.Claim(ctxT(t), store.ClaimRequest{Worker: worker, Now: now, Lease: lease, Limit: limit})
	must(t, err, "Claim")
	return ds
}

func getDelivery(t *testing.T, s store.Store, seq int64) store.Delivery {
	t.Helper()
	d, err := s.GetDelivery(ctxT(t), seq)
	must(t, err, "GetDelivery")
	return *d
}

func testEnqueueDedupe(t *testing.T, s store.Store) {
	steps := []struct {
		src  model.Source
		id   string
		want bool
	}{
		{model.SourceBitbucket, "A", true},
		{model.SourceBitbucket, "A", false}, // redelivery
		{model.SourceJira, "A", true},       // same id, other source
		{model.SourceBitbucket, "B", true},
		{model.SourceJira, "A", false},
	}
	var last int64
	for i, st := range steps {
		d := delivery(st.src, st.id, at(time.Duration(i)*time.Second))
		got, err := s.Enqueue(ctxT(t), d)
		must(t, err, "Enqueue")
		if got != st.want {
			t.Errorf("step %d Enqueue(%s, %s) = %v, want %v", i, st.src, st.id, got, st.want)
		}
		switch {
		case got && d.Seq <= last:
			t.Errorf("step %d: Seq %d not after %d", i, d.Seq, last)
		case !got && d.Seq != 0:
			t.Errorf("step %d: duplicate got Seq %d", i, d.Seq)
		}
		if got {
			last = d.Seq
		}
	}
	all, err := s.ListDeliveries(ctxT(t), "", 0)
	must(t, err, "ListDeliveries")
	if len(all) != 3 {
		t.Errorf("stored %d deliveries, want 3", len(all))
	}
}

func testEnqueueRoundTrip(t *testing.T, s store.Store) {
	d := delivery(model.SourceJira, "c0ffee", base)
	d.EventKey = "jira:issue_updated"
	ok, err := s.Enqueue(ctxT(t), d)
	must(t, err, "Enqueue")
	if !ok || d.Seq == 0 {
		t.Fatalf("Enqueue = %v, Seq %d", ok, d.Seq)
	}
	want := store.Delivery{
		Seq:           d.Seq,
		Source:        model.SourceJira,
		DeliveryID:    "c0ffee",
		EventKey:      "jira:issue_updated",
		Body:          []byte(`{"id":"c0ffee"}`),
		BodyBytes:     len(`{"id":"c0ffee"}`),
		ReceivedAt:    canon(base),
		State:         store.DeliveryPending,
		NextAttemptAt: canon(base),
	}
	got := getDelivery(t, s, d.Seq)
	same(t, "GetDelivery", got, want)
	utc(t, "times", got.ReceivedAt, got.NextAttemptAt)

	// An empty body comes back nil.
	e := delivery(model.SourceJira, "empty", base)
	e.Body = []byte{}
	_, err = s.Enqueue(ctxT(t), e)
	must(t, err, "Enqueue empty body")
	if got := getDelivery(t, s, e.Seq); got.Body != nil {
		t.Errorf("empty body came back as %q", got.Body)
	}
}

func testEnqueueRejectsIncomplete(t *testing.T, s store.Store) {
	cases := []struct {
		name string
		edit func(d *store.Delivery)
	}{
		{"no source", func(d *store.Delivery) { d.Source = "" }},
		{"no delivery id", func(d *store.Delivery) { d.DeliveryID = "" }},
		{"no received time", func(d *store.Delivery) { d.ReceivedAt = time.Time{} }},
	}
	for _, tc := range cases {
		d := delivery(model.SourceBitbucket, "x", base)
		tc.edit(d)
		if ok, err := s.Enqueue(ctxT(t), d); err == nil || ok {
			t.Errorf("%s: Enqueue = %v, %v; want an error", tc.name, ok, err)
		}
	}
	all, err := s.ListDeliveries(ctxT(t), "", 0)
	must(t, err, "ListDeliveries")
	if len(all) != 0 {
		t.Errorf("stored %d deliveries, want none", len(all))
	}
}

func testClaimOrderLimitDue(t *testing.T, s store.Store) {
	seqs := enqueue(t, s, 5) // due at base, +1m … +4m
	lease := 5 * time.Minute
	steps := []struct {
		now   time.Time
		limit int
		want  []int64
	}{
		{at(-time.Second), 10, []int64{}},    // nothing due yet
		{at(2 * time.Minute), 2, seqs[:2]},   // three due, limit two, oldest first
		{at(2 * time.Minute), 10, seqs[2:3]}, // the third; the rest not due
		{at(10 * time.Minute), 0, []int64{}}, // limit 0 claims nothing
		{at(3*time.Minute + 500*time.Millisecond), 10, seqs[3:4]},
		{at(4 * time.Minute), 10, seqs[4:5]}, // due exactly now
		{at(4 * time.Minute), 10, []int64{}}, // all claimed, leases running
	}
	for i, st := range steps {
		got := claim(t, s, "w1", st.now, lease, st.limit)
		same(t, fmt.Sprintf("step %d claimed", i), seqsOf(got), st.want)
		for _, d := range got {
			if d.State != store.DeliveryProcessing || d.ClaimedBy != "w1" || d.Attempts != 1 ||
				!d.ClaimedUntil.Equal(canon(st.now.Add(lease))) {
				t.Errorf("claimed %d: state %s by %q attempts %d until %v", d.Seq, d.State, d.ClaimedBy, d.Attempts, d.ClaimedUntil)
			}
			utc(t, "claimed times", d.ClaimedUntil, d.ReceivedAt, d.NextAttemptAt)
			if stored := getDelivery(t, s, d.Seq); !sameClaim(stored, d) {
				t.Errorf("claimed %+v, stored %+v", d, stored)
			}
		}
	}
}

func sameClaim(a, b store.Delivery) bool {
	return a.Seq == b.Seq && a.State == b.State && a.ClaimedBy == b.ClaimedBy && a.Attempts == b.Attempts &&
		a.ClaimedUntil.Equal(b.ClaimedUntil) && string(a.Body) == string(b.Body)
}

func testClaimReclaimsExpiredLease(t *testing.T, s store.Store) {
	seq := enqueue(t, s, 1)[0]
	lease := time.Minute
	steps := []struct {
		worker string
		now    time.Time
		want   []int64
	}{
		{"w1", base, []int64{seq}},
		{"w2", at(30 * time.Second), []int64{}}, // w1's lease holds
		{"w2", at(lease), []int64{seq}},         // w1 died: its lease ran out
		{"w1", at(lease + time.Second), []int64{}},
	}
	for i, st := range steps {
		got := claim(t, s, st.worker, st.now, lease, 10)
		same(t, fmt.Sprintf("step %d", i), seqsOf(got), st.want)
	}
	d := getDelivery(t, s, seq)
	if d.ClaimedBy != "w2" || d.Attempts != 2 || !d.ClaimedUntil.Equal(canon(at(2*lease))) {
		t.Errorf("after reclaim: by %q attempts %d until %v", d.ClaimedBy, d.Attempts, d.ClaimedUntil)
	}
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	const n, workers = 200, 8
	seqs := enqueueConcurrently(t, s, n, workers)
	now := at(n * time.Minute) // all due
	var mu sync.Mutex
	count := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				ds, err := s.Claim(ctxT(t), store.ClaimRequest{Worker: name("w", w), Now: now, Lease: time.Hour, Limit: 7})
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					count[d.Seq]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Claim: %v", err)
	}
	for _, seq := range seqs {
		if count[seq] != 1 {
			t.Errorf("delivery %d claimed %d times", seq, count[seq])
		}
	}
	if len(count) != n {
		t.Errorf("claimed %d distinct deliveries, want %d", len(count), n)
	}
}

// claimOne claims the oldest due delivery for worker at now and fails the
// test unless it is seq.
func claimOne(t *testing.T, s store.Store, worker string, now time.Time, seq int64) store.Claim {
	t.Helper()
	got := claim(t, s, worker, now, time.Minute, 1)
	if len(got) != 1 || got[0].Seq != seq {
		t.Fatalf("claim: %v, want %d", seqsOf(got), seq)
	}
	if got[0].ClaimToken == "" {
		t.Fatalf("claim of %d carries no token", seq)
	}
	return store.ClaimOf(got[0])
}

func lost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrLostClaim) || !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s: %v, want ErrLostClaim", what, err)
	}
}

func testComplete(t *testing.T, s store.Store) {
	seqs := enqueue(t, s, 2)
	c := claimOne(t, s, "w1", base, seqs[0])
	must(t, s.Complete(ctxT(t), c, at(time.Second)), "Complete")
	d := getDelivery(t, s, seqs[0])
	if d.State != store.DeliveryDone || !d.DoneAt.Equal(canon(at(time.Second))) || !d.ClaimedUntil.IsZero() || d.ClaimToken != "" {
		t.Errorf("completed: state %s done %v until %v token %q", d.State, d.DoneAt, d.ClaimedUntil, d.ClaimToken)
	}
	utc(t, "DoneAt", d.DoneAt)
	for _, tc := range []struct {
		name string
		c    store.Claim
	}{
		{"twice", c},
		{"pending, never claimed", store.Claim{Seq: seqs[1]}},
		{"unknown", store.Claim{Seq: seqs[1] + 100, Token: c.Token}},
	} {
		lost(t, "Complete "+tc.name, s.Complete(ctxT(t), tc.c, at(time.Minute)))
	}
	if got := claim(t, s, "w1", at(time.Hour), time.Minute, 10); len(got) != 1 || got[0].Seq != seqs[1] {
		t.Errorf("claim after complete: %v, want only %d", seqsOf(got), seqs[1])
	}
}

// testCompleteConcurrently: completions that arrive together (both stores
// commit them as a group) are each fenced by their own claim: of two
// completions of one delivery the holder's succeeds, the other (a stale
// token) gets ErrLostClaim, whatever group they land in.
func testCompleteConcurrently(t *testing.T, s store.Store) {
	const n = 60
	enqueue(t, s, n)
	claimed := claim(t, s, "w1", at(time.Hour), time.Hour, n)
	if len(claimed) != n {
		t.Fatalf("claimed %d of %d", len(claimed), n)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, refused := 0, 0
	for _, d := range claimed {
		for _, token := range []string{d.ClaimToken, "stale-" + d.ClaimToken} {
			wg.Go(func() {
				err := s.Complete(ctxT(t), store.Claim{Seq: d.Seq, Token: token}, at(2*time.Hour))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && token == d.ClaimToken:
					won++
				case errors.Is(err, store.ErrLostClaim) && token != d.ClaimToken:
					refused++
				default:
					t.Errorf("Complete %d with token %q: %v", d.Seq, token, err)
				}
			})
		}
	}
	wg.Wait()
	if won != n || refused != n {
		t.Errorf("%d completed, %d refused; want %d each", won, refused, n)
	}
	for _, d := range claimed {
		got := getDelivery(t, s, d.Seq)
		if got.State != store.DeliveryDone || !got.DoneAt.Equal(canon(at(2*time.Hour))) || got.ClaimToken != "" {
			t.Errorf("delivery %d: state %s, done at %v, token %q", d.Seq, got.State, got.DoneAt, got.ClaimToken)
		}
	}
}

func testRetry(t *testing.T, s store.Store) {
	seq := enqueue(t, s, 1)[0]
	c := claimOne(t, s, "w1", base, seq)
	retryAt := at(10 * time.Minute)
	must(t, s.Retry(ctxT(t), c, retryAt, "bitbucket: 503"), "Retry")
	d := getDelivery(t, s, seq)
	want := store.Delivery{
		Seq: seq, Source: model.SourceBitbucket, DeliveryID: "d-000", EventKey: "pullrequest:created",
		Body: []byte(`{"id":"d-000"}`), BodyBytes: len(`{"id":"d-000"}`), ReceivedAt: canon(base), State: store.DeliveryPending, Attempts: 1,
		NextAttemptAt: canon(retryAt), LastError: "bitbucket: 503",
	}
	same(t, "after Retry", d, want)
	lost(t, "Retry twice", s.Retry(ctxT(t), c, retryAt, "again"))
	if got := claim(t, s, "w2", retryAt.Add(-time.Millisecond), time.Minute, 10); len(got) != 0 {
		t.Errorf("claimed before due: %v", seqsOf(got))
	}
	got := claim(t, s, "w2", retryAt, time.Minute, 10)
	if len(got) != 1 || got[0].Attempts != 2 || got[0].ClaimedBy != "w2" {
		t.Fatalf("claim when due: %+v", got)
	}
	c2 := store.ClaimOf(got[0])
	if c2.Token == c.Token {
		t.Errorf("a new claim kept the old token %q", c.Token)
	}
	lost(t, "Retry with the first claim's token", s.Retry(ctxT(t), c, retryAt, "stale"))
	lost(t, "Retry unknown", s.Retry(ctxT(t), store.Claim{Seq: seq + 100, Token: c2.Token}, retryAt, "x"))
	must(t, s.Complete(ctxT(t), c2, retryAt), "Complete")
	lost(t, "Retry of a done delivery", s.Retry(ctxT(t), c2, retryAt, "late"))
}

func testBuryRedrive(t *testing.T, s store.Store) {
	seqs := enqueue(t, s, 2)
	c := claimOne(t, s, "w1", base, seqs[0])
	for range 2 { // a second claim: Attempts 2 before the burial
		must(t, s.Retry(ctxT(t), c, base, "again"), "Retry")
		c = claimOne(t, s, "w1", base, seqs[0])
	}
	lost(t, "Bury with a wrong token", s.Bury(ctxT(t), store.Claim{Seq: seqs[0], Token: "x"}, at(time.Second), "x"))
	must(t, s.Bury(ctxT(t), c, at(time.Second), "permanent: 404"), "Bury")
	d := getDelivery(t, s, seqs[0])
	if d.State != store.DeliveryDead || d.LastError != "permanent: 404" || d.Attempts != 3 || !d.DoneAt.Equal(canon(at(time.Second))) {
		t.Errorf("buried: state %s error %q attempts %d done %v", d.State, d.LastError, d.Attempts, d.DoneAt)
	}
	if got := claim(t, s, "w1", at(time.Hour), 24*time.Hour, 10); len(got) != 1 || got[0].Seq != seqs[1] {
		t.Errorf("claim with a dead delivery: %v, want only %d", seqsOf(got), seqs[1])
	}
	if err := s.Redrive(ctxT(t), seqs[1], at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Redrive of a live delivery: %v, want ErrNotFound", err)
	}
	now := at(2 * time.Hour)
	must(t, s.Redrive(ctxT(t), seqs[0], now), "Redrive")
	d = getDelivery(t, s, seqs[0])
	if d.State != store.DeliveryPending || d.Attempts != 0 || !d.NextAttemptAt.Equal(canon(now)) || !d.DoneAt.IsZero() {
		t.Errorf("redriven: state %s attempts %d next %v done %v", d.State, d.Attempts, d.NextAttemptAt, d.DoneAt)
	}
	if err := s.Redrive(ctxT(t), seqs[0], now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Redrive twice: %v, want ErrNotFound", err)
	}
	if got := claim(t, s, "w2", now, time.Minute, 10); len(got) != 1 || got[0].Seq != seqs[0] || got[0].Attempts != 1 {
		t.Errorf("claim after redrive: %+v", got)
	}
	lost(t, "Bury of the buried claim", s.Bury(ctxT(t), c, now, "x"))
	lost(t, "Bury unknown", s.Bury(ctxT(t), store.Claim{Seq: seqs[1] + 100}, now, "x"))
	if err := s.Redrive(ctxT(t), seqs[1]+100, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Redrive unknown: %v, want ErrNotFound", err)
	}
	// A pending delivery cannot be buried: nobody holds it.
	e := enqueue2(t, s, "late")
	lost(t, "Bury pending", s.Bury(ctxT(t), store.Claim{Seq: e}, now, "poison"))
}

func enqueue2(t *testing.T, s store.Store, id string) int64 {
	t.Helper()
	d := delivery(model.SourceJira, id, base)
	_, err := s.Enqueue(ctxT(t), d)
	must(t, err, "Enqueue")
	return d.Seq
}

// inboxStates leaves seqs[0:3] pending, [3:5] processing, [5] done and [6]
// dead.
func inboxStates(t *testing.T, s store.Store) []int64 {
	t.Helper()
	seqs := enqueue(t, s, 7)
	// Claims take the oldest first, so push 0…2 into the future, then claim 3…6.
	got := claim(t, s, "w", at(10*time.Minute), time.Hour, 3)
	for _, d := range got {
		must(t, s.Retry(ctxT(t), store.ClaimOf(d), at(24*time.Hour), "later"), "Retry")
	}
	got = claim(t, s, "w", at(10*time.Minute), time.Hour, 4)
	same(t, "claimed", seqsOf(got), seqs[3:7])
	must(t, s.Complete(ctxT(t), store.ClaimOf(got[2]), at(11*time.Minute)), "Complete")
	must(t, s.Bury(ctxT(t), store.ClaimOf(got[3]), at(11*time.Minute), "dead"), "Bury")
	return seqs
}

func testListDeliveries(t *testing.T, s store.Store) {
	seqs := inboxStates(t, s)
	cases := []struct {
		state store.DeliveryState
		limit int
		want  []int64
	}{
		{store.DeliveryPending, 0, seqs[0:3]},
		{store.DeliveryPending, 2, seqs[0:2]},
		{store.DeliveryProcessing, 0, seqs[3:5]},
		{store.DeliveryDone, 0, seqs[5:6]},
		{store.DeliveryDead, 10, seqs[6:7]},
		{"", 0, seqs},
		{"", 4, seqs[:4]},
	}
	for _, tc := range cases {
		got, err := s.ListDeliveries(ctxT(t), tc.state, tc.limit)
		must(t, err, "ListDeliveries")
		same(t, "ListDeliveries("+string(tc.state)+")", seqsOf(got), tc.want)
		for _, d := range got {
			if tc.state != "" && d.State != tc.state {
				t.Errorf("ListDeliveries(%s) returned %d in state %s", tc.state, d.Seq, d.State)
			}
			if d.Body != nil {
				t.Errorf("ListDeliveries(%s) returned the body of %d", tc.state, d.Seq)
			}
			if want := len(getDelivery(t, s, d.Seq).Body); d.BodyBytes != want || want == 0 {
				t.Errorf("ListDeliveries(%s): %d has BodyBytes %d, want %d", tc.state, d.Seq, d.BodyBytes, want)
			}
			if d.DeliveryID == "" || d.ReceivedAt.IsZero() {
				t.Errorf("ListDeliveries(%s) returned %d without its id or time: %+v", tc.state, d.Seq, d)
			}
		}
	}
}

func testGetDeliveryNotFound(t *testing.T, s store.Store) {
	if _, err := s.GetDelivery(ctxT(t), 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDelivery: %v, want ErrNotFound", err)
	}
}

func testInboxStats(t *testing.T, s store.Store) {
	st, err := s.InboxStats(ctxT(t))
	must(t, err, "InboxStats")
	same(t, "empty InboxStats", st, store.InboxStats{})

	inboxStates(t, s)
	st, err = s.InboxStats(ctxT(t))
	must(t, err, "InboxStats")
	same(t, "InboxStats", st, store.InboxStats{Pending: 3, Processing: 2, Dead: 1, OldestPending: canon(base)})
	utc(t, "OldestPending", st.OldestPending)

	// The oldest pending one is claimed and buried: the next oldest counts.
	got := claim(t, s, "w", at(24*time.Hour), time.Hour, 1)
	must(t, s.Bury(ctxT(t), store.ClaimOf(got[0]), at(24*time.Hour), "x"), "Bury")
	st, err = s.InboxStats(ctxT(t))
	must(t, err, "InboxStats")
	same(t, "InboxStats after bury", st, store.InboxStats{Pending: 2, Processing: 2, Dead: 2, OldestPending: canon(at(time.Minute))})
}
