package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
	sqlite3 "modernc.org/sqlite"

	"github.com/reloadly/rolekeeper/internal/replicatest"
	"github.com/reloadly/rolekeeper/internal/store/group"
)

// The durable floor (--floor) is the bare handler that also stores each
// delivery before its 202, in the least a durable endpoint can do: a
// group commit (the records that arrive while one is written share the
// next write) to a file, to one SQLite table or to one Postgres table, the
// tables keyed by the delivery id since an intake must store a repeated id
// once. A store that does more per delivery (an inbox's columns and
// indexes, a body table, claims) cannot be faster on the same machine, so
// the floor says how much of the gap to the bare handler the disk and the
// database account for.

// floors are the kinds --floor takes: how each opens its store in the
// run's directory, and what it does with a delivery, for the report.
var floors = map[string]struct {
	open func(ctx context.Context, o *options, dir string) (floorStore, error)
	does string
}{
	"file": {
		open: func(_ context.Context, _ *options, dir string) (floorStore, error) {
			return openRing(filepath.Join(dir, "floor.log"), floorRing)
		},
		does: "appended to a file written in full beforehand, one fsync per group",
	},
	"sqlite": {
		open: func(_ context.Context, _ *options, dir string) (floorStore, error) {
			return openSQLiteFloor(filepath.Join(dir, "floor.db"))
		},
		does: "inserted into one SQLite table keyed by the delivery id (WAL, fdatasync), one transaction per group",
	},
	"journal": {
		open: func(_ context.Context, _ *options, dir string) (floorStore, error) {
			return openJournalFloor(dir, floorRing)
		},
		does: fmt.Sprintf("appended to a file journal (one fsync per group; a repeated id answered from memory), "+
			"then copied into one SQLite table keyed by the delivery id in transactions of up to %d, at most %d waiting",
			journalBatch, journalBacklog),
	},
	"postgres": {
		open: func(ctx context.Context, o *options, _ string) (floorStore, error) { return openPGFloor(ctx, o.dsn) },
		does: fmt.Sprintf("inserted into one Postgres table keyed by the delivery id, one INSERT of arrays and its commit per group, up to %d groups at once",
			pgFloorWriters),
	},
}

// floorRing is the size of the floor's file: a ring wraps only in long
// runs, and a wrap rewrites blocks written at the start, as the first pass
// does.
const floorRing = 256 << 20

// record is one delivery to store.
type record struct {
	id   string
	body []byte
}

var errFloorClosed = errors.New("durable floor closed")

// groupCommit stores what Append gathers in groups, through the
// daemon's own group commit (internal/store/group): the first caller to
// find no group under way stores what is queued; the ones that arrive
// meanwhile go in the next group. With several lanes, callers take them
// in turn, so up to that many groups are stored at once.
type groupCommit struct {
	flush func([]record) error
	lanes []group.Group[record]
	next  atomic.Uint64

	mu     sync.RWMutex // held shared by each Append, so Close waits for them
	closed bool
}

// groupLimit bounds a group: more than any run's connections.
const groupLimit = 1000

func newGroupCommit(lanes int, flush func([]record) error) *groupCommit {
	return &groupCommit{flush: flush, lanes: make([]group.Group[record], lanes)}
}

// Append returns once the record is stored, or with the error that kept
// its group from being stored.
func (g *groupCommit) Append(r record) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return errFloorClosed
	}
	lane := &g.lanes[g.next.Add(1)%uint64(len(g.lanes))]
	return lane.Do(context.Background(), r, groupLimit, func(_ context.Context, batch []record) []error {
		err := g.flush(batch)
		errs := make([]error, len(batch))
		for i := range errs {
			errs[i] = err
		}
		return errs
	})
}

// Close waits for the Appends under way; later ones fail.
func (g *groupCommit) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// floorStore is where the floor keeps what it accepts.
type floorStore interface {
	Append(record) error
	Close() error
}

// ringLog keeps records in a file written in full at the start and then
// overwritten in a ring, so that a sync flushes data and no change of the
// file's size, as SQLite's reused WAL does. It neither dedupes nor indexes.
type ringLog struct {
	f    *os.File
	size int64
	off  int64  // next offset; g has one lane, so one group at a time uses it
	buf  []byte // the encoded group, reused likewise
	g    *groupCommit
}

// openRing creates path with size bytes written.
func openRing(path string, size int64) (*ringLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	zero := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(zero)) {
		if _, err := f.Write(zero[:min(int64(len(zero)), size-n)]); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	l := &ringLog{f: f, size: size}
	l.g = newGroupCommit(1, l.flush)
	return l, nil
}

// Append returns once r is on the disk.
func (l *ringLog) Append(r record) error {
	if int64(len(r.id)+len(r.body)+2*binary.MaxVarintLen64) > l.size {
		return fmt.Errorf("record of %d bytes: larger than the log", len(r.body))
	}
	return l.g.Append(r)
}

func (l *ringLog) flush(batch []record) error {
	l.buf = l.buf[:0]
	for _, r := range batch {
		l.buf = binary.AppendUvarint(l.buf, uint64(len(r.id)))
		l.buf = append(l.buf, r.id...)
		l.buf = binary.AppendUvarint(l.buf, uint64(len(r.body)))
		l.buf = append(l.buf, r.body...)
	}
	for b := l.buf; len(b) > 0; {
		if l.off == l.size {
			l.off = 0
		}
		n := min(int64(len(b)), l.size-l.off)
		if _, err := l.f.WriteAt(b[:n], l.off); err != nil {
			return err
		}
		l.off += n
		b = b[n:]
	}
	return l.f.Sync()
}

func (l *ringLog) Close() error {
	l.g.Close()
	return l.f.Close()
}

// pgFloor keeps records in one Postgres table whose primary key is the
// delivery id (a repeated id is stored once, as any intake must), each
// group one INSERT of arrays committed on its own, up to pgFloorWriters
// groups at once (as many as it has connections). It lives in a schema of
// its own, dropped at Close.
type pgFloor struct {
	schema *replicatest.Schema
	pool   *pgxpool.Pool
	g      *groupCommit
}

const (
	pgFloorWriters = 4
	pgFloorTable   = `CREATE TABLE floor (delivery_id text PRIMARY KEY, body bytea NOT NULL)`
	pgFloorInsert  = `INSERT INTO floor (delivery_id, body) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING`
)

func openPGFloor(ctx context.Context, dsn string) (*pgFloor, error) {
	s, err := replicatest.NewSchema(ctx, dsn, "rk_floor_")
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(s.DSN)
	if err != nil {
		return nil, errors.Join(err, s.Drop(ctx))
	}
	cfg.MaxConns = pgFloorWriters
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		_, err = pool.Exec(ctx, pgFloorTable)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, errors.Join(err, s.Drop(ctx))
	}
	p := &pgFloor{schema: s, pool: pool}
	p.g = newGroupCommit(pgFloorWriters, p.flush)
	return p, nil
}

func (p *pgFloor) Append(r record) error { return p.g.Append(r) }

func (p *pgFloor) flush(batch []record) error {
	ids := make([]string, len(batch))
	bodies := make([][]byte, len(batch))
	for i, r := range batch {
		ids[i], bodies[i] = r.id, r.body
	}
	_, err := p.pool.Exec(context.Background(), pgFloorInsert, ids, bodies)
	return err
}

// sqliteFloor keeps records in one SQLite table keyed by the delivery id,
// in WAL mode with every commit synced (fdatasync), each group one
// transaction on the one connection. SQLite checkpoints as it does by
// default, in the commit that passes 1,000 pages of WAL.
type sqliteFloor struct {
	db     *sql.DB
	insert *sql.Stmt
	g      *groupCommit
}

func openSQLiteFloor(path string) (*sqliteFloor, error) {
	f, err := openSQLiteTable(path)
	if err != nil {
		return nil, err
	}
	f.g = newGroupCommit(1, f.flush)
	return f, nil
}

// openSQLiteTable opens the table without a group commit: the journal
// floor's mover writes to it alone.
func openSQLiteTable(path string) (*sqliteFloor, error) {
	_, _ = sqlite3.Fdatasync(true) // as the daemon's store commits
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	f := &sqliteFloor{db: db}
	_, err = db.Exec(`CREATE TABLE floor (delivery_id TEXT PRIMARY KEY, body BLOB NOT NULL)`)
	if err == nil {
		f.insert, err = db.Prepare(`INSERT INTO floor (delivery_id, body) VALUES (?, ?) ON CONFLICT DO NOTHING`)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
}

func (f *sqliteFloor) Append(r record) error { return f.g.Append(r) }

func (f *sqliteFloor) flush(batch []record) error {
	tx, err := f.db.Begin()
	if err != nil {
		return err
	}
	st := tx.Stmt(f.insert)
	for _, r := range batch {
		if _, err := st.Exec(r.id, r.body); err != nil {
			return errors.Join(err, tx.Rollback())
		}
	}
	return tx.Commit()
}

func (f *sqliteFloor) Close() error {
	if f.g != nil {
		f.g.Close()
	}
	return f.db.Close()
}

// journalFloor is the ring log in front of the SQLite floor's table: an
// intake journal. Append returns once the record is in the ring (a
// repeated id at once: the floor keeps every id it accepted in memory, the
// least a dedupe spanning the journal and the table can cost); a mover
// copies what the ring holds into the table in transactions of up to
// journalBatch records. At most journalBacklog records wait for the mover
// and past that Append waits, so a sustained rate is the mover's: a
// journal that grew without bound would only defer the work.
type journalFloor struct {
	ring  *ringLog
	table *sqliteFloor

	mu    sync.Mutex
	room  *sync.Cond // signalled when the mover has taken records
	queue []record   // in the ring, not yet in the table
	seen  map[string]bool
	err   error // the mover's first failure; Append returns it
	stop  bool

	wake chan struct{}
	done chan struct{}
}

const (
	journalBatch   = 1000
	journalBacklog = 10000
)

// openJournalFloor opens the journal (a ring of ringSize bytes) and the
// table in dir.
func openJournalFloor(dir string, ringSize int64) (*journalFloor, error) {
	ring, err := openRing(filepath.Join(dir, "floor.journal"), ringSize)
	if err != nil {
		return nil, err
	}
	table, err := openSQLiteTable(filepath.Join(dir, "floor.db"))
	if err != nil {
		ring.Close()
		return nil, err
	}
	j := &journalFloor{ring: ring, table: table, seen: map[string]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	j.room = sync.NewCond(&j.mu)
	go j.move()
	return j, nil
}

func (j *journalFloor) Append(r record) error {
	j.mu.Lock()
	for len(j.queue) >= journalBacklog && j.err == nil && !j.stop {
		j.room.Wait()
	}
	switch {
	case j.err != nil:
		j.mu.Unlock()
		return j.err
	case j.stop:
		j.mu.Unlock()
		return errFloorClosed
	case j.seen[r.id]:
		j.mu.Unlock()
		return nil
	}
	j.seen[r.id] = true
	j.mu.Unlock()
	if err := j.ring.Append(r); err != nil {
		j.mu.Lock()
		delete(j.seen, r.id)
		j.mu.Unlock()
		return err
	}
	j.mu.Lock()
	j.queue = append(j.queue, r)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// move copies the queue into the table until Close, then what is left.
func (j *journalFloor) move() {
	defer close(j.done)
	for {
		j.mu.Lock()
		n := min(len(j.queue), journalBatch)
		batch, stop := j.queue[:n:n], j.stop
		j.mu.Unlock()
		if n == 0 {
			if stop {
				return
			}
			<-j.wake
			continue
		}
		err := j.table.flush(batch)
		j.mu.Lock()
		j.queue = j.queue[n:]
		if err != nil && j.err == nil {
			j.err = err
		}
		j.room.Broadcast()
		j.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (j *journalFloor) Close() error {
	j.mu.Lock()
	j.stop = true
	j.room.Broadcast()
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.done
	return errors.Join(j.ring.Close(), j.table.Close())
}

func (p *pgFloor) Close() error {
	p.g.Close()
	p.pool.Close()
	return p.schema.Drop(context.Background())
}
