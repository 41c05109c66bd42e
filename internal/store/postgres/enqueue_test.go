package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Concurrent Enqueues are inserted in groups: each delivery id is stored
// once whatever the interleaving (repeats in one group included), every
// caller learns whether its own was new, and the stored rows are whole.
func TestEnqueueGroupInsert(t *testing.T) {
	s := open(t, schemaDSN(t))
	const ids, repeats = 200, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	inserted := map[string]int{}
	seqs := map[int64]bool{}
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	for r := range repeats {
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("d-%d", i)
				d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: id, EventKey: "repo:push",
					Body: []byte(fmt.Sprintf(`{"i":%d,"r":%d}`, i, r)), ReceivedAt: at}
				ok, err := s.Enqueue(context.Background(), d)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					inserted[id]++
					if d.Seq <= 0 || seqs[d.Seq] {
						t.Errorf("%s: seq %d unset or repeated", id, d.Seq)
					}
					seqs[d.Seq] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(inserted) != ids {
		t.Fatalf("%d ids inserted, want %d", len(inserted), ids)
	}
	for id, n := range inserted {
		if n != 1 {
			t.Errorf("%s inserted %d times", id, n)
		}
	}
	for seq := range seqs {
		d, err := s.GetDelivery(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != store.DeliveryPending || len(d.Body) == 0 || !d.ReceivedAt.Equal(at) {
			t.Errorf("delivery %d: %+v", seq, d)
		}
	}
}

// Migration 0007 stores delivery bodies with lz4 where the server has it,
// and the index nothing reads is gone.
func TestDeliveryBodiesCompressedWithLZ4(t *testing.T) {
	dsn := schemaDSN(t)
	open(t, dsn).Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var idx int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'deliveries_lease'`).Scan(&idx); err != nil {
		t.Fatal(err)
	}
	if idx != 0 {
		t.Error("deliveries_lease still exists")
	}
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE rk_lz4_probe (b bytea COMPRESSION lz4)`); err != nil {
		t.Skipf("this server has no lz4 (%v): bodies keep pglz", err)
	}
	var method string
	if err := conn.QueryRow(ctx, `SELECT attcompression::text FROM pg_attribute
		WHERE attrelid = 'deliveries'::regclass AND attname = 'body'`).Scan(&method); err != nil {
		t.Fatal(err)
	}
	if method != "l" {
		t.Errorf("deliveries.body compression %q, want l (lz4)", method)
	}
}
