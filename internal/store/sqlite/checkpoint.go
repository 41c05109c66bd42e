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
const (
	checkpointEvery      = 100 * time.Millisecond
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
	db, err := sql.Open("sqlite", checkpointDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
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
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		// Errors (a full disk, a busy lock) leave the frames in the WAL
		// for the next try, or for the writer's own checkpoint.
		_, _ = c.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

// close stops the loop and closes the connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
