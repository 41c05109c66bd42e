// Package pgtest is the one way tests reach PostgreSQL: a schema of their
// own in the test database, dropped when the test ends.
//
// Without a server, tests that need one are skipped, with one loud line on
// stderr saying how to run them, so that `go test ./...` passes on a fresh
// machine. With ROLEKEEPER_REQUIRE_POSTGRES=1 (CI sets it in .ci/run) a
// missing server fails them instead: CI never skips them silently.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server CI starts (trust auth); ROLEKEEPER_TEST_POSTGRES_DSN
// overrides it.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Environment variables.
const (
	EnvDSN     = "ROLEKEEPER_TEST_POSTGRES_DSN"
	EnvRequire = "ROLEKEEPER_REQUIRE_POSTGRES"
)

// BaseDSN is the DSN of the test database.
func BaseDSN() string {
	if v := os.Getenv(EnvDSN); v != "" {
		return v
	}
	return DefaultDSN
}

var (
	probeOnce sync.Once
	probeErr  error
)

// probe connects once per test binary.
func probe() error {
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, BaseDSN())
		if err != nil {
			probeErr = err
			return
		}
		probeErr = conn.Ping(ctx)
		conn.Close(context.Background())
	})
	return probeErr
}

var loudOnce sync.Once

// Require returns the base DSN when the server answers. Otherwise it skips
// tb (failing it with ROLEKEEPER_REQUIRE_POSTGRES=1).
func Require(tb testing.TB) string {
	tb.Helper()
	err := probe()
	if err == nil {
		return BaseDSN()
	}
	dsn := redactString(BaseDSN())
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("PostgreSQL is required (%s=1) but unreachable at %s: %v", EnvRequire, dsn, err)
	}
	loudOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "\n*** SKIPPING the PostgreSQL tests: no server at %s (%v). To run them, start one "+
			"(trust auth, database test; .ci/run does) or point %s at one; %s=1 makes a missing server fail. ***\n\n",
			dsn, err, EnvDSN, EnvRequire)
	})
	tb.Skipf("PostgreSQL unreachable at %s: skipped (set %s, or %s=1 to fail instead)", dsn, EnvDSN, EnvRequire)
	return ""
}

// SchemaDSN creates a schema of its own for tb (prefix + random hex),
// dropped when tb ends, and returns a DSN whose search_path points at it,
// with the extra connection parameters (name, value pairs). It skips or
// fails tb as Require does.
func SchemaDSN(tb testing.TB, prefix string, params ...string) string {
	tb.Helper()
	base := Require(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewSchema(ctx, base, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Drop(ctx); err != nil {
			tb.Errorf("%v", err)
		}
	})
	if len(params) == 0 {
		return s.DSN
	}
	u, err := url.Parse(s.DSN)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Schema is a schema of its own in a shared database, so that runs never
// see each other's rows.
type Schema struct {
	Name string
	DSN  string // base DSN with search_path set to the schema
	base string
}

// NewSchema creates a uniquely named schema (prefix + random hex) and
// returns its DSN. base must be a postgres:// URL.
func NewSchema(ctx context.Context, base, prefix string) (*Schema, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("postgres dsn %q: want a postgres:// URL", redactString(base))
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("postgres unreachable at %s: %w", redact(u), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", name, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return &Schema{Name: name, DSN: u.String(), base: base}, nil
}

// Drop removes the schema and everything in it.
func (s *Schema) Drop(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return fmt.Errorf("drop schema %s: %w", s.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s.Name}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", s.Name, err)
	}
	return nil
}

func redactString(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable dsn)"
	}
	return redact(u)
}

func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxx")
		}
	}
	return strings.TrimSpace(c.String())
}
