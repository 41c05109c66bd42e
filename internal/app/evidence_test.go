package app

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/evidence"
)

// TestEvidenceDaemon (h6): roles versions are recorded, the hourly job
// checkpoints the head, and a tampered chain is reported without stopping
// the daemon.
func TestEvidenceDaemon(t *testing.T) {
	e := startApp(t)
	ctx := context.Background()
	st := e.app.Store()
	kinds := func() []string {
		var out []string
		if err := st.ScanEvidence(ctx, 0, 0, func(r evidence.Record) bool { out = append(out, r.Kind); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := strings.Join(kinds(), ","); got != evidence.KindRoles {
		t.Fatalf("records after start = %s, want the roles version", got)
	}
	good, _ := os.ReadFile("testdata/roles.yaml")
	if err := os.WriteFile(e.roles, append(good, "# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(), ","); got != evidence.KindRoles+","+evidence.KindRoles {
		t.Fatalf("records after a reload = %s", got)
	}

	if err := e.app.evidenceJob(ctx); err != nil {
		t.Fatal(err)
	}
	cps, err := st.ListCheckpoints(ctx)
	if err != nil || len(cps) != 1 || cps[0].Seq != 2 || cps[0].Signed() {
		t.Fatalf("checkpoints = %+v %v", cps, err)
	}
	chainOK := func(want string) {
		t.Helper()
		if _, body := e.get("/metrics", false); !strings.Contains(body, "\nrolekeeper_evidence_chain_ok "+want+"\n") {
			t.Errorf("metrics lack rolekeeper_evidence_chain_ok %s", want)
		}
	}
	chainOK("1")
	if code, body := e.get("/readyz", false); code != http.StatusOK || !strings.Contains(body, "intact: 2 records") {
		t.Errorf("readyz: %d %s", code, body)
	}

	// The weekly report checkpoints the week's last record and the head.
	if err := e.app.deliverWeeklyReport(ctx); err != nil {
		t.Fatal(err)
	}
	if cps, err = st.ListCheckpoints(ctx); err != nil || len(cps) != 3 {
		t.Fatalf("checkpoints after the weekly report = %+v %v", cps, err)
	}
	reasons := map[string]bool{}
	for _, c := range cps {
		reasons[c.Reason] = true
	}
	if !reasons[evidence.ReasonWeekEnd] || !reasons[evidence.ReasonWeeklyReport] {
		t.Errorf("checkpoint reasons = %v", reasons)
	}

	db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(e.roles), "data", "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE evidence SET content = replace(content, 'roles.yaml', 'other.yaml') WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if err := e.app.evidenceJob(ctx); err != nil {
		t.Fatal(err)
	}
	chainOK("0")
	if code, body := e.get("/readyz", false); code != http.StatusOK || !strings.Contains(body, "BROKEN at record 1 (roles.version)") {
		t.Errorf("readyz after tampering: %d %s", code, body)
	}
	if n := e.logs.FilterMessageSnippet("EVIDENCE CHAIN BROKEN").Len(); n != 1 {
		t.Errorf("%d loud logs of the break", n)
	}
	if got := kinds(); got[len(got)-1] != evidence.KindChainBreak {
		t.Errorf("the break is not recorded: %v", got)
	}
}
