package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

func gateTests() []test {
	return []test{
		{"CreateGet", testGateCreateGet},
		{"UpdateVersion", testGateUpdate},
		{"ListFilters", testListGates},
	}
}

func fullGate() store.Gate {
	return store.Gate{
		ID:           "g_7Hk2",
		DedupeKey:    "acme/pay@4f2a9c1be07d5a3c6b8e9f0a1b2c3d4e5f607182:production",
		Repository:   "acme/pay",
		Commit:       "4f2a9c1be07d5a3c6b8e9f0a1b2c3d4e5f607182",
		Environment:  "production",
		Team:         "checkout",
		RuleID:       "checkout/deploy/1",
		State:        store.GatePending,
		Approvers:    []string{"557058:mei", "557058:kofi"},
		Excluded:     []string{"557058:author"},
		PRs:          []int{12, 14},
		PipelineUUID: "{c2b3d4e5-0000-4000-8000-000000000001}",
		BuildNumber:  311,
		CreatedAt:    base,
		ExpiresAt:    at(24 * time.Hour),
		Notified:     true,
		Data:         json.RawMessage(`{"history": [ {"at":"x"} ]}`),
	}
}

func canonGate(g store.Gate) store.Gate {
	g.CreatedAt, g.ExpiresAt, g.DecidedAt = canon(g.CreatedAt), canon(g.ExpiresAt), canon(g.DecidedAt)
	return g
}

func testGateCreateGet(t *testing.T, s store.Store) {
	g := fullGate()
	must(t, s.CreateGate(ctxT(t), &g), "CreateGate")
	if g.Version != 1 {
		t.Errorf("Version after create = %d, want 1", g.Version)
	}
	got, err := s.GetGate(ctxT(t), g.ID)
	must(t, err, "GetGate")
	same(t, "GetGate", *got, canonGate(g))
	utc(t, "times", got.CreatedAt, got.ExpiresAt)
	got, err = s.GetGateByKey(ctxT(t), g.DedupeKey)
	must(t, err, "GetGateByKey")
	same(t, "GetGateByKey", *got, canonGate(g))

	// A bare gate: nil slices and zero times stay so.
	bare := store.Gate{ID: "g_bare", DedupeKey: "bare", CreatedAt: at(time.Hour)}
	must(t, s.CreateGate(ctxT(t), &bare), "CreateGate bare")
	got, err = s.GetGate(ctxT(t), "g_bare")
	must(t, err, "GetGate bare")
	same(t, "bare gate", *got, canonGate(bare))

	for _, tc := range []struct {
		name string
		g    store.Gate
	}{
		{"same id", store.Gate{ID: g.ID, DedupeKey: "other", CreatedAt: base}},
		{"same dedupe key", store.Gate{ID: "g_other", DedupeKey: g.DedupeKey, CreatedAt: base}},
	} {
		if err := s.CreateGate(ctxT(t), &tc.g); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateGate %s: %v, want ErrConflict", tc.name, err)
		}
	}
	if _, err := s.GetGate(ctxT(t), "g_other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetGate unknown: %v, want ErrNotFound", err)
	}
	if _, err := s.GetGateByKey(ctxT(t), "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetGateByKey unknown: %v, want ErrNotFound", err)
	}
	if err := s.CreateGate(ctxT(t), &store.Gate{ID: "g_notime", DedupeKey: "notime"}); err == nil {
		t.Error("CreateGate without CreatedAt: no error")
	}
}

func testGateUpdate(t *testing.T, s store.Store) {
	g := fullGate()
	must(t, s.CreateGate(ctxT(t), &g), "CreateGate")
	stale := g

	g.State = store.GateApproved
	g.DecidedBy = "557058:mei"
	g.DecidedAt = at(time.Hour)
	g.Reason = "approved by Mei, technical lead of checkout"
	g.BreakGlass = true
	g.FollowUp = "PAY-99"
	g.Approvers = []string{}
	g.PRs = nil
	g.Data = json.RawMessage(`{"history":[1,2]}`)
	must(t, s.UpdateGate(ctxT(t), &g), "UpdateGate")
	if g.Version != 2 {
		t.Errorf("Version after update = %d, want 2", g.Version)
	}
	got, err := s.GetGate(ctxT(t), g.ID)
	must(t, err, "GetGate")
	same(t, "after update", *got, canonGate(g))

	stale.State = store.GateRejected
	if err := s.UpdateGate(ctxT(t), &stale); !errors.Is(err, store.ErrConflict) {
		t.Errorf("UpdateGate with a stale version: %v, want ErrConflict", err)
	}
	if stale.Version != 1 {
		t.Errorf("stale Version changed to %d", stale.Version)
	}
	got, err = s.GetGate(ctxT(t), g.ID)
	must(t, err, "GetGate")
	same(t, "after stale update", *got, canonGate(g))

	// Two writers from the same version: one wins.
	a, b := *got, *got
	a.Reason, b.Reason = "a", "b"
	errA, errB := s.UpdateGate(ctxT(t), &a), s.UpdateGate(ctxT(t), &b)
	if errA != nil || !errors.Is(errB, store.ErrConflict) {
		t.Errorf("racing updates: %v, %v; want nil, ErrConflict", errA, errB)
	}

	other := store.Gate{ID: "g_2", DedupeKey: "k2", CreatedAt: base}
	must(t, s.CreateGate(ctxT(t), &other), "CreateGate")
	other.DedupeKey = g.DedupeKey
	if err := s.UpdateGate(ctxT(t), &other); !errors.Is(err, store.ErrConflict) {
		t.Errorf("UpdateGate to a taken dedupe key: %v, want ErrConflict", err)
	}
	missing := store.Gate{ID: "g_missing", DedupeKey: "m", Version: 1, CreatedAt: base}
	if err := s.UpdateGate(ctxT(t), &missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateGate unknown: %v, want ErrNotFound", err)
	}
}

func testListGates(t *testing.T, s store.Store) {
	seed := []store.Gate{
		{ID: "g3", DedupeKey: "3", Repository: "acme/pay", State: store.GatePending, CreatedAt: at(2 * time.Hour)},
		{ID: "g1", DedupeKey: "1", Repository: "acme/pay", State: store.GateApproved, CreatedAt: at(0)},
		{ID: "g2", DedupeKey: "2", Repository: "acme/web", State: store.GatePending, CreatedAt: at(time.Hour)},
		{ID: "g4", DedupeKey: "4", Repository: "acme/web", State: store.GateExpired, CreatedAt: at(3 * time.Hour)},
	}
	for i := range seed {
		must(t, s.CreateGate(ctxT(t), &seed[i]), "CreateGate")
	}
	cases := []struct {
		name string
		f    store.GateFilter
		want []string
	}{
		{"all, by creation", store.GateFilter{}, []string{"g1", "g2", "g3", "g4"}},
		{"limit", store.GateFilter{Limit: 1}, []string{"g1"}},
		{"state", store.GateFilter{State: store.GatePending}, []string{"g2", "g3"}},
		{"repository", store.GateFilter{Repository: "acme/web"}, []string{"g2", "g4"}},
		{"since inclusive", store.GateFilter{Since: at(time.Hour)}, []string{"g2", "g3", "g4"}},
		{"until exclusive", store.GateFilter{Until: at(2 * time.Hour)}, []string{"g1", "g2"}},
		{"all filters", store.GateFilter{State: store.GatePending, Repository: "acme/pay", Since: base, Until: at(5 * time.Hour)}, []string{"g3"}},
		{"no match", store.GateFilter{State: store.GateRejected}, nil},
	}
	for _, tc := range cases {
		got, err := s.ListGates(ctxT(t), tc.f)
		must(t, err, "ListGates")
		var ids []string
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		same(t, "ListGates "+tc.name, ids, tc.want)
	}
}

func kvTests() []test {
	return []test{
		{"PutSetGetDelete", testKV},
		{"KeysPrefix", testKeys},
	}
}

func testKV(t *testing.T, s store.Store) {
	steps := []struct {
		op, key, value string
		wantOK         bool   // PutIfAbsent stored / Get found
		wantValue      string // Get
	}{
		{"get", "cursor", "", false, ""},
		{"put", "cursor", "1", true, ""},
		{"put", "cursor", "2", false, ""},
		{"get", "cursor", "", true, "1"},
		{"set", "cursor", "3", false, ""},
		{"get", "cursor", "", true, "3"},
		{"set", "fresh", "", false, ""}, // an empty value exists
		{"get", "fresh", "", true, ""},
		{"delete", "cursor", "", false, ""},
		{"get", "cursor", "", false, ""},
		{"delete", "cursor", "", false, ""}, // deleting a missing key is fine
		{"put", "cursor", "4", true, ""},
		{"get", "cursor", "", true, "4"},
	}
	for i, st := range steps {
		switch st.op {
		case "put":
			ok, err := s.PutIfAbsent(ctxT(t), st.key, st.value)
			must(t, err, "PutIfAbsent")
			if ok != st.wantOK {
				t.Errorf("step %d PutIfAbsent(%s) = %v, want %v", i, st.key, ok, st.wantOK)
			}
		case "set":
			must(t, s.Set(ctxT(t), st.key, st.value), "Set")
		case "get":
			v, ok, err := s.Get(ctxT(t), st.key)
			must(t, err, "Get")
			if ok != st.wantOK || v != st.wantValue {
				t.Errorf("step %d Get(%s) = %q, %v; want %q, %v", i, st.key, v, ok, st.wantValue, st.wantOK)
			}
		case "delete":
			must(t, s.Delete(ctxT(t), st.key), "Delete")
		}
	}
}

func testKeys(t *testing.T, s store.Store) {
	keys := []string{"commented/PAY-2", "commented/PAY-10", "commented/Pay-1", "commented%/x", "commented_x",
		"commentedZ", "cursor/audit", "c", "Budget", "é/1", "é/0"}
	for _, k := range keys {
		must(t, s.Set(ctxT(t), k, "v"), "Set")
	}
	cases := []struct {
		prefix string
		want   []string // byte order
	}{
		{"", []string{"Budget", "c", "commented%/x", "commented/PAY-10", "commented/PAY-2", "commented/Pay-1",
			"commentedZ", "commented_x", "cursor/audit", "é/0", "é/1"}},
		{"commented/", []string{"commented/PAY-10", "commented/PAY-2", "commented/Pay-1"}},
		{"commented/PAY", []string{"commented/PAY-10", "commented/PAY-2"}},
		{"commented%", []string{"commented%/x"}}, // no LIKE wildcards
		{"commented_", []string{"commented_x"}},
		{"c", []string{"c", "commented%/x", "commented/PAY-10", "commented/PAY-2", "commented/Pay-1",
			"commentedZ", "commented_x", "cursor/audit"}},
		{"é", []string{"é/0", "é/1"}},
		{"budget", nil}, // case matters
		{"zzz", nil},
	}
	for _, tc := range cases {
		got, err := s.Keys(ctxT(t), tc.prefix)
		must(t, err, "Keys")
		same(t, "Keys("+tc.prefix+")", got, tc.want)
	}
}

func leaseTests() []test {
	return []test{
		{"AcquireRenewExpireRelease", testLeases},
	}
}

func testLeases(t *testing.T, s store.Store) {
	const ttl = time.Minute
	steps := []struct {
		op     string // acquire | release
		lease  string
		holder string
		now    time.Duration // after base
		want   bool
	}{
		{"acquire", "cron", "a", 0, true},
		{"acquire", "cron", "b", 30 * time.Second, false}, // held by a
		{"acquire", "cron", "a", 30 * time.Second, true},  // renewed until 90s
		{"acquire", "cron", "b", 89 * time.Second, false},
		{"acquire", "other", "b", 89 * time.Second, true}, // leases are independent
		{"acquire", "cron", "b", 90 * time.Second, true},  // a's lease ran out: b takes over
		{"acquire", "cron", "a", 100 * time.Second, false},
		{"release", "cron", "a", 0, false}, // not the holder: no effect
		{"acquire", "cron", "a", 101 * time.Second, false},
		{"release", "cron", "b", 0, false},
		{"acquire", "cron", "a", 102 * time.Second, true}, // free again
		{"release", "nothing", "a", 0, false},             // releasing a missing lease is fine
	}
	for i, st := range steps {
		switch st.op {
		case "acquire":
			got, err := s.AcquireLease(ctxT(t), st.lease, st.holder, ttl, at(st.now))
			must(t, err, "AcquireLease")
			if got != st.want {
				t.Errorf("step %d AcquireLease(%s, %s, +%v) = %v, want %v", i, st.lease, st.holder, st.now, got, st.want)
			}
		case "release":
			must(t, s.ReleaseLease(ctxT(t), st.lease, st.holder), "ReleaseLease")
		}
	}
}
