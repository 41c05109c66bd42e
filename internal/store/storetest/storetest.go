// Package storetest is the conformance suite every store.Store passes, so
// that no behaviour of one database leaks through the interfaces.
//
// Conventions the suite holds implementations to, beyond the interface docs:
//   - times round-trip to the millisecond (truncated, never rounded) and come
//     back in UTC; a zero time comes back zero;
//   - nil slices and maps come back nil, empty ones empty; raw JSON comes back
//     byte for byte, empty as nil; an empty Body comes back nil;
//   - a lease or a claim whose expiry is <= now has expired;
//   - Renew, Complete, Retry and Bury act only on the current claim (its
//     token) of a processing delivery, ErrLostClaim otherwise;
//   - ListDeliveries with an empty state lists every state; limits <= 0 do
//     not limit;
//   - the ClosedSince/ClosedUntil bounds of PRFilter match closed PRs only;
//   - PRsByCommit finds nothing for "" or a short hash (full hashes only);
//   - Enqueue needs Source, DeliveryID and ReceivedAt; SaveDecision needs
//     CreatedAt; AddFinding needs Key and OccurredAt; CreateGate needs ID and
//     CreatedAt: each fails without them.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// Run runs the suite. open returns a new, empty store for one subtest and
// may register cleanups on t (removing its files or schema); Run closes the
// store itself when the subtest ends. Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Inbox", inboxTests()},
		{"Decisions", decisionTests()},
		{"PullRequests", prTests()},
		{"Findings", findingTests()},
		{"Gates", gateTests()},
		{"KV", kvTests()},
		{"Leases", leaseTests()},
		{"Ping", []test{{"Answers", testPing}}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s := open(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("close: %v", err)
						}
					})
					tc.fn(t, s)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// base is a time with nanoseconds in a zone other than UTC, to show the
// truncation and the UTC conversion.
var base = time.Date(2025, 3, 10, 9, 30, 15, 123456789, time.FixedZone("CET", 3600))

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// canon is what a store returns for t: truncated to the millisecond, in UTC.
func canon(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// must fails the test on err.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// same fails the test unless got and want are deeply equal.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// utc fails the test when a non-zero time is not in UTC.
func utc(t *testing.T, what string, times ...time.Time) {
	t.Helper()
	for i, tm := range times {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s[%d]: location %s, want UTC", what, i, tm.Location())
		}
	}
}

func ctxT(t *testing.T) context.Context { return t.Context() }

func name(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }
