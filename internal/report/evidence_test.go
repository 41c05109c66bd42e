package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// TestEvidenceWitness: every format and the Jira issue carry the week's
// first and last records and the chain head, as the store has them.
func TestEvidenceWitness(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, _ := ParseWeek("2026-W47", time.UTC)
	// One record before the week, two in it, one after.
	for i, at := range []time.Time{w.Start().Add(-time.Hour), w.Start().Add(time.Hour), w.Start().Add(50 * time.Hour), w.End().Add(time.Hour)} {
		if _, err := st.SaveDecision(ctx, &store.DecisionRecord{Kind: "pull_request", PR: i + 1, Summary: "s", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	var recs []evidence.Record
	if err := st.ScanEvidence(ctx, 0, 0, func(r evidence.Record) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatal(err)
	}
	r, err := Build(ctx, st, testOrg(), w, Options{Now: w.End()})
	if err != nil {
		t.Fatal(err)
	}
	want := EvidenceSpan{Records: 2, FirstSeq: 2, LastSeq: 3, Head: recs[2].Hash, HeadBefore: recs[0].Hash}
	if r.Evidence == nil || *r.Evidence != want {
		t.Fatalf("evidence = %+v, want %+v", r.Evidence, want)
	}
	head := recs[2].Hash
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Render(&buf, r, f); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		switch f {
		case "json":
			var got struct{ Evidence EvidenceSpan }
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil || got.Evidence != want {
				t.Errorf("json evidence = %+v %v", got.Evidence, err)
			}
		case "csv":
			rows, _ := csv.NewReader(strings.NewReader(out)).ReadAll()
			if n := len(rows[0]); rows[0][n-1] != "evidence_head" {
				t.Errorf("csv header = %v", rows[0])
			}
		default:
			out = strings.ReplaceAll(out, "<wbr>", "") // HTML lets the head break
			if !strings.Contains(out, "records 2–3") || !strings.Contains(out, head) {
				t.Errorf("%s lacks the evidence span:\n%s", f, out)
			}
		}
	}
	r.Violations = []Violation{{Team: "payments", Ref: "x#1"}}
	var buf bytes.Buffer
	if err := CSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	if rows, _ := csv.NewReader(&buf).ReadAll(); len(rows) < 2 || strings.Join(rows[1][len(rows[1])-3:], ",") != "2,3,"+head {
		t.Errorf("csv row = %v", rows)
	}

	org := testOrg()
	org.Rules[2].Project = "PLAT"
	filer := &fakeFiler{}
	if _, err := DeliverToJira(ctx, filer, &memMarks{m: map[string]string{}}, org, r, "", w.End(), Link{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filer.bodies[0], "records 2–3") || !strings.Contains(filer.bodies[0], head) ||
		!strings.Contains(filer.created[0], "evidence 2–3 sha256:"+head[:12]) {
		t.Errorf("jira issue: %s\n%s", filer.created[0], filer.bodies[0])
	}
}
