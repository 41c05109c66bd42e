package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SQLite copies the WAL back into the database file (a checkpoint) in the
// commit that takes the WAL past wal_autocheckpoint pages (1,000 by
// default): under load, every few dozen group commits one of them, on the
// single writer connection, also wrote and fsynced megabytes of pages
// while the intake waited (10 % of the CPU of BenchmarkIntakeBesideWorkers).
// A connection of its own now checkpoints in the background, PASSIVE:
// it never blocks the writer, which keeps appending to the WAL meanwhile.
// The writer still checkpoints itself past writerAutocheckpoint pages,
// should the background fall behind, so the WAL stays bounded.
//
// How often matters for latency, not throughput: a checkpoint ends with an
// fsync of the database file, and the writer's next fdatasync of the WAL
// waits behind it on the disk. Every 100 ms under wrk that fsync carried
// about 6 MB of pages and the intake's p99 was 23.5-26.3 ms; every 10 ms
// it was 14.1-14.6 ms for the same throughput (shorter still cost
// throughput: every 3 ms, 9.3-9.8 ms for 8 % fewer deliveries;
// docs/benchmarks.md). So the checkpointer runs every checkpointBusy while
// commits keep coming and backs off to checkpointIdle when they stop.
const (
	checkpointBusy       = 10 * time.Millisecond
	checkpointIdle       = 100 * time.Millisecond
	writerAutocheckpoint = 8000 // pages (32 MiB of 4 KiB pages)
)

// checkpointer runs PASSIVE checkpoints on its own connection until
// stopped. With synchronous=FULL a checkpoint fsyncs the WAL before it
// copies and the database file before the WAL may be reused, so durability
// does not depend on which connection checkpoints.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := openOne(checkpointDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTimer(checkpointIdle)
	defer t.Stop()
	var last walState
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := c.checkpoint()
		t.Reset(nextCheckpoint(last, now))
		last = now
	}
}

// checkpoint runs one PASSIVE checkpoint. Errors (a full disk, a busy
// lock) leave the frames in the WAL for the next try, or for the writer's
// own checkpoint.
func (c *checkpointer) checkpoint() walState {
	var busy int
	var st walState
	if err := c.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &st.frames, &st.copied); err != nil {
		return walState{frames: -1, copied: -1}
	}
	return st
}

// walState is what a checkpoint reports: frames in the WAL and frames
// copied into the database file (-1 each when the WAL could not be read,
// or another checkpoint, the writer's own, was running).
type walState struct{ frames, copied int64 }

// nextCheckpoint is the wait before the next checkpoint: short while the
// WAL changes between two checkpoints (commits are coming), long once it
// stands still, so an idle daemon wakes ten times a second, not a hundred.
func nextCheckpoint(last, now walState) time.Duration {
	if now.frames < 0 || now == last {
		return checkpointIdle
	}
	return checkpointBusy
}

// close stops the loop and closes the connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
