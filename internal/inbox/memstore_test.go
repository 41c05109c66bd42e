package inbox

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// memStore is an in-memory store.Inbox following the interface's contract;
// the tests also run against the real SQLite store.
type memStore struct {
	mu     sync.Mutex
	rows   []*store.Delivery
	beats  map[string]time.Time
	tokens int
}

func (m *memStore) Enqueue(_ context.Context, d *store.Delivery) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rows {
		if r.Source == d.Source && r.DeliveryID == d.DeliveryID {
			return false, nil
		}
	}
	c := *d
	c.Seq = int64(len(m.rows) + 1)
	c.State = store.DeliveryPending
	c.NextAttemptAt = d.ReceivedAt
	d.Seq = c.Seq
	m.rows = append(m.rows, &c)
	return true, nil
}

func (m *memStore) Claim(_ context.Context, req store.ClaimRequest) ([]store.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Delivery
	for _, r := range m.rows {
		if len(out) >= req.Limit {
			break
		}
		beat, beats := m.beats[r.ClaimedBy]
		due := r.State == store.DeliveryPending && !r.NextAttemptAt.After(req.Now) ||
			r.State == store.DeliveryProcessing && (!r.ClaimedUntil.After(req.Now) ||
				beats && !req.StaleBefore.IsZero() && !beat.After(req.StaleBefore))
		if !due {
			continue
		}
		m.tokens++
		r.State = store.DeliveryProcessing
		r.ClaimedBy = req.Worker
		r.ClaimedUntil = req.Now.Add(req.Lease)
		r.ClaimToken = "t" + strconv.Itoa(m.tokens)
		r.Attempts++
		out = append(out, *r)
	}
	return out, nil
}

// held returns the delivery of claim c, or nil when c is not its current
// claim.
func (m *memStore) held(c store.Claim) *store.Delivery {
	for _, r := range m.rows {
		if r.Seq == c.Seq && r.State == store.DeliveryProcessing && r.ClaimToken == c.Token {
			return r
		}
	}
	return nil
}

func (m *memStore) find(seq int64) *store.Delivery {
	for _, r := range m.rows {
		if r.Seq == seq {
			return r
		}
	}
	return nil
}

func (m *memStore) Renew(_ context.Context, c store.Claim, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.held(c)
	if r == nil {
		return store.ErrLostClaim
	}
	r.ClaimedUntil = until
	return nil
}

func (m *memStore) Complete(_ context.Context, c store.Claim, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.held(c)
	if r == nil {
		return store.ErrLostClaim
	}
	r.State, r.DoneAt, r.ClaimToken, r.ClaimedUntil = store.DeliveryDone, now, "", time.Time{}
	return nil
}

func (m *memStore) Retry(_ context.Context, c store.Claim, at time.Time, msg string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.held(c)
	if r == nil {
		return store.ErrLostClaim
	}
	r.State, r.NextAttemptAt, r.LastError, r.ClaimedBy, r.ClaimToken, r.ClaimedUntil = store.DeliveryPending, at, msg, "", "", time.Time{}
	return nil
}

func (m *memStore) Bury(_ context.Context, c store.Claim, now time.Time, msg string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.held(c)
	if r == nil {
		return store.ErrLostClaim
	}
	r.State, r.LastError, r.DoneAt, r.ClaimToken, r.ClaimedUntil = store.DeliveryDead, msg, now, "", time.Time{}
	return nil
}

func (m *memStore) Heartbeat(_ context.Context, replica string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.beats == nil {
		m.beats = map[string]time.Time{}
	}
	m.beats[replica] = now
	return nil
}

func (m *memStore) Leave(_ context.Context, replica string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.beats, replica)
	return nil
}

func (m *memStore) ListDeliveries(_ context.Context, st store.DeliveryState, limit int) ([]store.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Delivery
	for _, r := range m.rows {
		if (st == "" || r.State == st) && (limit <= 0 || len(out) < limit) {
			c := *r
			c.Body, c.BodyBytes = nil, len(r.Body)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (m *memStore) GetDelivery(_ context.Context, seq int64) (*store.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(seq)
	if r == nil {
		return nil, store.ErrNotFound
	}
	c := *r
	c.BodyBytes = len(r.Body)
	return &c, nil
}

func (m *memStore) Redrive(_ context.Context, seq int64, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(seq)
	if r == nil || r.State != store.DeliveryDead {
		return store.ErrNotFound
	}
	r.State, r.Attempts, r.NextAttemptAt, r.DoneAt = store.DeliveryPending, 0, now, time.Time{}
	return nil
}

func (m *memStore) InboxStats(_ context.Context) (store.InboxStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s store.InboxStats
	for _, r := range m.rows {
		switch r.State {
		case store.DeliveryPending:
			s.Pending++
			if s.OldestPending.IsZero() || r.ReceivedAt.Before(s.OldestPending) {
				s.OldestPending = r.ReceivedAt
			}
		case store.DeliveryProcessing:
			s.Processing++
		case store.DeliveryDead:
			s.Dead++
		}
	}
	return s, nil
}
