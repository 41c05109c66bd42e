package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

// TestDiskFullIntake fills the SQLite database while deliveries keep
// coming: SQLite's max_page_count makes every write past a few pages fail
// with SQLITE_FULL, as on a full disk. Intake answers 503 (Bitbucket
// retries 5xx) for what it could not store, and everything it answered
// 202 is in the store afterwards: nothing acknowledged is lost, nothing
// refused is half-kept.
func TestDiskFullIntake(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "rk.db")
	pre, err := sqlite.Open(ctx, path) // migrated, then measured
	if err != nil {
		t.Fatal(err)
	}
	sz, err := pre.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pre.Close()
	pages := sz.Bytes/4096 + 12 // room for a few deliveries of 16 KiB

	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	bb.AddRepository("acme/nobody-owns")
	bb.AddUser(amara)

	rolesPath := filepath.Join(dir, "roles.yaml")
	copyFile(t, "testdata/roles.yaml", rolesPath)
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Roles = rolesPath
	cfg.Store = config.Store{Driver: config.DriverSQLite, DSN: fmt.Sprintf("file:%s?_pragma=max_page_count(%d)", path, pages)}
	cfg.Bitbucket.BaseURL = bb.URL()
	cfg.Schedule.Audit, cfg.Schedule.WeeklyReport = "", ""
	cfg.Reports.Dir = filepath.Join(dir, "reports")
	env := map[string]string{config.EnvBitbucketWebhookSecret: newSecret}
	core, logs := observer.New(zap.WarnLevel)
	a, err := New(cfg, config.LoadSecrets(func(k string) string { return env[k] }), Options{Logger: zap.New(core), ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := a.Stop(sctx); err != nil {
			t.Logf("stop: %v", err)
		}
	}
	t.Cleanup(stop)

	codes := map[string]int{}
	for i := range 40 {
		id := bb.AddPullRequest("acme/nobody-owns", bitbuckettest.PR{Title: fmt.Sprint("PR ", i), Author: amara,
			Files: []model.ChangedFile{{Path: "main.go", Status: model.FileModified}}})
		var payload map[string]any
		if err := json.Unmarshal(bb.WebhookBody("pullrequest:created", "acme/nobody-owns", id, amara), &payload); err != nil {
			t.Fatal(err)
		}
		payload["padding"] = strings.Repeat("x", 16<<10)
		body, _ := json.Marshal(payload)
		uuid := fmt.Sprintf("full-%02d", i)
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.Addr()+"/webhooks/bitbucket", bytes.NewReader(body))
		req.Header.Set("X-Event-Key", "pullrequest:created")
		req.Header.Set("X-Request-UUID", uuid)
		req.Header.Set(webhook.SignatureHeader, webhook.SignatureFor(body, newSecret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[uuid] = resp.StatusCode
	}
	stop()

	st, err := sqlite.Open(ctx, path) // no limit now: read what was kept
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := st.ListDeliveries(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, d := range all {
		stored[d.DeliveryID] = true
	}
	var accepted, refused int
	for uuid, code := range codes {
		switch code {
		case http.StatusAccepted:
			accepted++
			if !stored[uuid] {
				t.Errorf("%s was acknowledged (202) but is not in the store", uuid)
			}
		case http.StatusServiceUnavailable:
			refused++
			if stored[uuid] {
				t.Errorf("%s was refused (503) but is in the store", uuid)
			}
		default:
			t.Errorf("%s: status %d, want 202 or 503", uuid, code)
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("%d accepted, %d refused: the database never filled, or nothing fit", accepted, refused)
	}
	full := 0
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), "database or disk is full") {
			full++
		}
	}
	if full == 0 {
		for _, e := range logs.All() {
			t.Logf("log: %s %v", e.Message, e.ContextMap())
		}
		t.Errorf("no SQLITE_FULL in the log: the 503s had another cause")
	}
	if d, err := st.GetDelivery(ctx, all[0].Seq); err != nil || len(d.Body) < 16<<10 {
		t.Errorf("a stored delivery lost its body: %v", err)
	}
	t.Logf("max_page_count %d: %d deliveries accepted and stored, %d refused with 503 and not stored", pages, accepted, refused)
}
