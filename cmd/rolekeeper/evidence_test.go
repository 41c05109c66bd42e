package main

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// TestEvidenceCommands (h6): verify names a tampered record with exit 1,
// export writes a bundle that verifies offline, a changed byte fails it,
// pubkey prints the key.
func TestEvidenceCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rk.yaml", "store: {dsn: rk.db}\nroles: "+abs(t, "testdata/roles.yaml")+"\n")
	_, priv, _ := ed25519.GenerateKey(nil)
	env := map[string]string{"ROLEKEEPER_EVIDENCE_KEY": base64.StdEncoding.EncodeToString(priv.Seed())}
	pub := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))

	// A week of decisions (2026-W49: Mon 30 Nov – Sun 6 Dec), one before and one after.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	weekStart := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{weekStart.Add(-time.Hour), weekStart.Add(time.Hour), weekStart.Add(30 * time.Hour), weekStart.Add(8 * 24 * time.Hour)} {
		if _, err := st.SaveDecision(ctx, &store.DecisionRecord{Kind: model.SubjectPullRequest, PR: i + 1, Summary: "asked amara", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	check(t, runCmd(t, env, "evidence", "pubkey"), 0, []string{pub}, nil)
	check(t, runCmd(t, nil, "evidence", "pubkey"), 1, nil, []string{"ROLEKEEPER_EVIDENCE_KEY is not set"})
	check(t, runCmd(t, env, "evidence", "verify", "--config", cfg), 0, []string{"evidence intact: 4 records (1–4)", "head: record 4 sha256:", "match their last records"}, nil)
	check(t, runCmd(t, env, "evidence", "verify"), 2, nil, []string{"exactly one of --config FILE or --bundle DIR"})
	check(t, runCmd(t, env, "evidence", "verify", "--config", filepath.Join(dir, "none.yaml")), 2, nil, nil)

	out := filepath.Join(dir, "bundle")
	check(t, runCmd(t, env, "evidence", "export", "--config", cfg, "--week", "2026-W49", "--out", out), 0,
		[]string{"week 2026-W49, 2 records (2–3)"}, nil)
	for _, name := range []string{"manifest.json", "records.jsonl", "checkpoints.jsonl", "report.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("bundle lacks %s", name)
		}
	}
	check(t, runCmd(t, nil, "evidence", "verify", "--bundle", out, "--pubkey", pub), 0,
		[]string{"bundle intact: week 2026-W49, 2 records (2–3)", "covered by a signed checkpoint", "signing key: " + pub}, nil)
	otherPub := base64.StdEncoding.EncodeToString(make([]byte, 32))
	check(t, runCmd(t, nil, "evidence", "verify", "--bundle", out, "--pubkey", otherPub), 1, []string{"bundle BROKEN"}, nil)
	check(t, runCmd(t, nil, "evidence", "verify", "--bundle", filepath.Join(dir, "nope")), 2, nil, []string{"no such file"})

	recPath := filepath.Join(out, "records.jsonl")
	data, _ := os.ReadFile(recPath)
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(recPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, runCmd(t, nil, "evidence", "verify", "--bundle", out), 1, []string{"bundle BROKEN: records.jsonl: SHA-256"}, nil)

	// Someone edits a decision's record in the database.
	db, err := sql.Open("sqlite", filepath.Join(dir, "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// First the decisions table only: the chain is intact, the row is not.
	if _, err := db.Exec(`UPDATE decisions SET summary = 'asked kofi' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	check(t, runCmd(t, env, "evidence", "verify", "--config", cfg), 1,
		[]string{"evidence BROKEN: decision 3: the stored row differs from its last record", "(record 3, decision)", "the chain itself is intact"}, nil)
	if _, err := db.Exec(`UPDATE evidence SET content = replace(content, 'amara', 'kofi') WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, env, "evidence", "verify", "--config", cfg)
	check(t, r, 1, []string{"evidence BROKEN: record 3 (decision):", "(edited)"}, nil)
	if strings.Contains(r.stdout, "intact") {
		t.Errorf("broken chain reported intact: %s", r.stdout)
	}
	check(t, runCmd(t, env, "evidence", "export", "--config", cfg, "--week", "2026-W49", "--out", filepath.Join(dir, "b2")), 1,
		nil, []string{"the week's chain is broken at record 3 (decision)"})
}
