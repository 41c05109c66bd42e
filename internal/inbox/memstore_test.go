package inbox

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// memStore is an in-memory store.Inbox following the interface's contract;
// the tests also run against the real SQLite store.
type memStore struct {
	mu   sync.Mutex
	rows []*store.Delivery
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
		due := r.State == store.DeliveryPending && !r.NextAttemptAt.After(req.Now) ||
			r.State == store.DeliveryProcessing && !r.ClaimedUntil.After(req.Now)
		if !due {
			continue
		}
		r.State = store.DeliveryProcessing
		r.ClaimedBy = req.Worker
		r.ClaimedUntil = req.Now.Add(req.Lease)
		r.Attempts++
		out = append(out, *r)
	}
	return out, nil
}

func (m *memStore) find(seq int64) *store.Delivery {
	for _, r := range m.rows {
		if r.Seq == seq {
			return r
		}
	}
	return nil
}

func (m *memStore) Complete(_ context.Context, seq int64, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(seq)
	if r == nil {
		return store.ErrNotFound
	}
	r.State, r.DoneAt, r.ClaimedBy = store.DeliveryDone, now, ""
	return nil
}

func (m *memStore) Retry(_ context.Context, seq int64, at time.Time, msg string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(seq)
	if r == nil {
		return store.ErrNotFound
	}
	r.State, r.NextAttemptAt, r.LastError, r.ClaimedBy = store.DeliveryPending, at, msg, ""
	return nil
}

func (m *memStore) Bury(_ context.Context, seq int64, msg string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(seq)
	if r == nil {
		return store.ErrNotFound
	}
	r.State, r.LastError, r.ClaimedBy = store.DeliveryDead, msg, ""
	return nil
}

func (m *memStore) ListDeliveries(_ context.Context, st store.DeliveryState, limit int) ([]store.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Delivery
	for _, r := range m.rows {
		if r.State == st && (limit <= 0 || len(out) < limit) {
			out = append(out, *r)
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
	return &c, nil
}

func (m *memStore) Redrive(_ context.Context, seq int64, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(seq)
	if r == nil || r.State != store.DeliveryDead {
		return store.ErrNotFound
	}
	r.State, r.Attempts, r.NextAttemptAt = store.DeliveryPending, 0, now
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
