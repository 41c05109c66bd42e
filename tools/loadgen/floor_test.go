package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
)

// TestGroupCommitAnswersEachRecordWithItsGroup: every Append returns
// its own group's outcome: the error of a group that failed, nil for one
// stored, however the records were grouped.
func TestGroupCommitAnswersEachRecordWithItsGroup(t *testing.T) {
	boom := errors.New("disk full")
	var mu sync.Mutex
	failed := map[string]bool{} // id → its group failed
	g := newGroupCommit(1, func(batch []record) error {
		time.Sleep(time.Millisecond) // let callers queue behind
		bad := slices.ContainsFunc(batch, func(r record) bool { return strings.HasPrefix(r.id, "bad") })
		mu.Lock()
		defer mu.Unlock()
		for _, r := range batch {
			failed[r.id] = bad
		}
		if bad {
			return boom
		}
		return nil
	})
	defer g.Close()
	got := make([]error, 60)
	var wg sync.WaitGroup
	for i := range got {
		id := fmt.Sprint(i)
		if i%7 == 0 {
			id = "bad" + id
		}
		wg.Go(func() { got[i] = g.Append(record{id: id}) })
	}
	wg.Wait()
	for i, err := range got {
		id := fmt.Sprint(i)
		if i%7 == 0 {
			id = "bad" + id
		}
		if want := failed[id]; errors.Is(err, boom) != want || (err != nil && !want) {
			t.Errorf("record %s: Append = %v, its group failed: %v", id, err, want)
		}
	}
}

// TestGroupCommitLanesStoreAtOnce: with two lanes, a second group is
// stored while the first still is; with one, it waits.
func TestGroupCommitLanesStoreAtOnce(t *testing.T) {
	entered := make(chan string, 2)
	release := make(chan struct{})
	g := newGroupCommit(2, func(batch []record) error {
		entered <- batch[0].id
		<-release
		return nil
	})
	defer g.Close()
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Go(func() {
			if err := g.Append(record{id: id}); err != nil {
				t.Error(err)
			}
		})
	}
	var in []string
	for range 2 {
		select {
		case id := <-entered:
			in = append(in, id)
		case <-time.After(10 * time.Second):
			close(release)
			wg.Wait()
			t.Fatalf("only %v being stored at once, want a and b", in)
		}
	}
	close(release)
	wg.Wait()
}

// TestGroupCommitCloseWaitsForAppends: Close returns only once the Appends
// under way are stored, and Append after it fails without storing.
func TestGroupCommitCloseWaitsForAppends(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var stored atomic.Int64
	g := newGroupCommit(1, func(batch []record) error {
		if batch[0].id == "first" {
			close(started)
			<-release
		}
		stored.Add(int64(len(batch)))
		return nil
	})
	appended := make(chan error, 1)
	go func() { appended <- g.Append(record{id: "first"}) }()
	<-started
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	select {
	case <-closed:
		close(release)
		t.Fatal("Close returned while an Append was being stored")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-closed
	if n := stored.Load(); n != 1 {
		t.Fatalf("Close returned with %d records stored, want the one appended before it", n)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if err := g.Append(record{id: "late"}); !errors.Is(err, errFloorClosed) || stored.Load() != 1 {
		t.Fatalf("Append after Close = %v (stored %d), want %v and nothing stored", err, stored.Load(), errFloorClosed)
	}
}

// TestRingLogWritesRecordsInARing: records are encoded one after the
// other and wrap to the start of the file at its end.
func TestRingLogWritesRecordsInARing(t *testing.T) {
	const size = 100
	path := filepath.Join(t.TempDir(), "ring")
	l, err := openRing(path, size)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	for i := range 4 { // 4 × 32 bytes: the fourth wraps
		r := record{id: fmt.Sprintf("id-%d", i), body: []byte(strings.Repeat(string(rune('a'+i)), 26))}
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
		stream = binary.AppendUvarint(stream, uint64(len(r.id)))
		stream = append(stream, r.id...)
		stream = binary.AppendUvarint(stream, uint64(len(r.body)))
		stream = append(stream, r.body...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for i, b := range stream {
		want[i%size] = b
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("file\n%q\nwant\n%q", got, want)
	}
	if err := l.Append(record{id: "x"}); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	big := record{id: "big", body: make([]byte, size)}
	if l2, err := openRing(path, size); err != nil {
		t.Fatal(err)
	} else {
		defer l2.Close()
		if err := l2.Append(big); err == nil {
			t.Fatal("a record larger than the ring was accepted")
		}
	}
}

// floorRows counts the rows of a floor table and the distinct bodies of id.
func floorRows(t *testing.T, q func(string, ...any) (int, error)) (rows, withA int) {
	t.Helper()
	rows, err := q(`SELECT count(*) FROM floor`)
	if err != nil {
		t.Fatal(err)
	}
	withA, err = q(`SELECT count(*) FROM floor WHERE delivery_id = 'a'`)
	if err != nil {
		t.Fatal(err)
	}
	return rows, withA
}

// TestSQLiteFloorStoresARepeatedIDOnce: the SQLite floor keeps what it
// acknowledged, in a file another connection reads, a repeated id once.
func TestSQLiteFloorStoresARepeatedIDOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.db")
	f, err := openSQLiteFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "a"} {
		if err := f.Append(record{id: id, body: []byte(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, withA := floorRows(t, func(q string, args ...any) (n int, err error) {
		return n, db.QueryRow(q, args...).Scan(&n)
	})
	if rows != 2 || withA != 1 {
		t.Fatalf("%d rows, %d with id a; want 2 and 1", rows, withA)
	}
}

// TestJournalFloorJournalsThenMoves: the journal floor writes each new id
// to its ring once (a repeated id is answered without a write) and, by
// Close, has moved every record into the table.
func TestJournalFloorJournalsThenMoves(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournalFloor(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "a", "c"} {
		if err := j.Append(record{id: id, body: []byte("body-" + id)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(record{id: "d"}); !errors.Is(err, errFloorClosed) {
		t.Fatalf("Append after Close = %v, want %v", err, errFloorClosed)
	}
	ring, err := os.ReadFile(filepath.Join(dir, "floor.journal"))
	if err != nil {
		t.Fatal(err)
	}
	var journaled []string
	for b := ring; len(b) > 0; {
		n, k := binary.Uvarint(b)
		if n == 0 || k <= 0 {
			break // the zeros past the last record
		}
		id := string(b[k : k+int(n)])
		b = b[k+int(n):]
		m, k := binary.Uvarint(b)
		b = b[k+int(m):]
		journaled = append(journaled, id)
	}
	if !slices.Equal(journaled, []string{"a", "b", "c"}) {
		t.Fatalf("journal holds %v, want a, b, c once each", journaled)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "floor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, withA := floorRows(t, func(q string, args ...any) (n int, err error) {
		return n, db.QueryRow(q, args...).Scan(&n)
	})
	if rows != 3 || withA != 1 {
		t.Fatalf("table: %d rows, %d with id a; want 3 and 1", rows, withA)
	}
}

// TestPostgresFloorStoresARepeatedIDOnce: the same on Postgres, whose
// schema Close drops.
func TestPostgresFloorStoresARepeatedIDOnce(t *testing.T) {
	base := pgtest.Require(t)
	ctx := context.Background()
	f, err := openPGFloor(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	closeFloor := func() (err error) {
		closeOnce.Do(func() { err = f.Close() })
		return err
	}
	t.Cleanup(func() { _ = closeFloor() }) // a failure must not leave the schema behind
	for _, id := range []string{"a", "b", "a"} {
		if err := f.Append(record{id: id, body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, f.schema.DSN)
	if err != nil {
		t.Fatal(err)
	}
	rows, withA := floorRows(t, func(q string, args ...any) (n int, err error) {
		return n, conn.QueryRow(ctx, q, args...).Scan(&n)
	})
	conn.Close(ctx)
	if rows != 2 || withA != 1 {
		t.Fatalf("%d rows, %d with id a; want 2 and 1", rows, withA)
	}
	if err := closeFloor(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, f.schema.Name).Scan(&left); err != nil || left != 0 {
		t.Fatalf("schema %s left after Close: %d (%v)", f.schema.Name, left, err)
	}
}

// failingStore refuses every record.
type failingStore struct{ n int }

func (f *failingStore) Append(record) error { f.n++; return errors.New("disk full") }
func (f *failingStore) Close() error        { return nil }

// memStore keeps records in memory.
type memStore struct{ ids []string }

func (m *memStore) Append(r record) error { m.ids = append(m.ids, r.id); return nil }
func (m *memStore) Close() error          { return nil }

// TestFloorHandlerStoresBeforeAnswering: the floor answers 202 only for
// what it stored, 503 when the store fails, and stores nothing unsigned.
func TestFloorHandlerStoresBeforeAnswering(t *testing.T) {
	const secret = "k"
	body := []byte(`{"x":1}`)
	send := func(h http.Handler, sig string) int {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", strings.NewReader(string(body)))
		req.Header.Set("X-Event-Key", "pullrequest:created")
		req.Header.Set("X-Request-UUID", "{1}")
		req.Header.Set("X-Hub-Signature", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	m := &memStore{}
	if got := send(bareHandler(secret, m), bitbuckettest.Sign(secret, body)); got != http.StatusAccepted || !slices.Equal(m.ids, []string{"{1}"}) {
		t.Fatalf("signed: %d, stored %v; want 202 and {1} stored", got, m.ids)
	}
	if got := send(bareHandler(secret, m), bitbuckettest.Sign("other", body)); got != http.StatusUnauthorized || len(m.ids) != 1 {
		t.Fatalf("wrongly signed: %d, stored %v; want 401 and nothing more stored", got, m.ids)
	}
	f := &failingStore{}
	if got := send(bareHandler(secret, f), bitbuckettest.Sign(secret, body)); got != http.StatusServiceUnavailable || f.n != 1 {
		t.Fatalf("store failing: %d after %d attempts; want 503 after 1", got, f.n)
	}
}
