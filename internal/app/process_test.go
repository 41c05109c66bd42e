package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/inbox"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

type tempErr struct{ after time.Duration }

func (e tempErr) Error() string             { return "status 503" }
func (e tempErr) Temporary() bool           { return true }
func (e tempErr) RetryAfter() time.Duration { return e.after }

func TestProcess(t *testing.T) {
	perm := inbox.Permanent(errors.New("no such pull request"))
	tests := []struct {
		name       string
		source     model.Source
		parseErr   error
		errs       []error // one per handler
		wantCalls  int
		wantErr    bool
		permanent  bool
		retryAfter time.Duration
	}{
		{name: "every handler sees the event", errs: []error{nil, nil}, wantCalls: 2},
		{name: "a stored body that no longer parses is permanent", parseErr: errors.New("bad json"), errs: []error{nil}, wantErr: true, permanent: true},
		{name: "unknown source is permanent", source: "gitlab", errs: []error{nil}, wantErr: true, permanent: true},
		{name: "one temporary failure retries, and the others still ran", errs: []error{tempErr{time.Minute}, nil}, wantCalls: 2, wantErr: true, retryAfter: time.Minute},
		{name: "one permanent failure alone is permanent", errs: []error{nil, perm}, wantCalls: 2, wantErr: true, permanent: true},
		{name: "permanent beside temporary retries", errs: []error{perm, tempErr{0}}, wantCalls: 2, wantErr: true},
		{name: "every failure permanent", errs: []error{perm, fmt.Errorf("wrapped: %w", perm)}, wantCalls: 2, wantErr: true, permanent: true},
		{name: "longest retry-after wins", errs: []error{tempErr{time.Second}, tempErr{time.Hour}}, wantCalls: 2, wantErr: true, retryAfter: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.source
			if src == "" {
				src = model.SourceBitbucket
			}
			a := &App{log: zap.NewNop(), parsers: map[model.Source]webhook.ParseFunc{
				model.SourceBitbucket: func(key string, body []byte) (*model.Event, error) {
					if tt.parseErr != nil {
						return nil, tt.parseErr
					}
					return &model.Event{Source: model.SourceBitbucket, Key: key, Kind: model.EventRepoPush}, nil
				},
			}}
			calls := 0
			for i, e := range tt.errs {
				a.RegisterHandler(fmt.Sprintf("h%d", i), EventHandlerFunc(func(_ context.Context, ev *model.Event) error {
					calls++
					if ev.DeliveryID != "d-1" {
						t.Errorf("handler saw delivery %q", ev.DeliveryID)
					}
					return e
				}))
			}
			err := a.process(context.Background(), store.Delivery{Source: src, DeliveryID: "d-1", EventKey: "repo:push", Body: []byte("{}")})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d handler calls, want %d", calls, tt.wantCalls)
			}
			if got := inbox.IsPermanent(err); got != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if got := inbox.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("retry after = %v, want %v", got, tt.retryAfter)
			}
		})
	}
}
