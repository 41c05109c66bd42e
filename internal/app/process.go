package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/inbox"
	"github.com/reloadly/rolekeeper/internal/store"
)

// process is the inbox's Processor: it parses the stored body with its
// source's parser and gives the event to every handler.
func (a *App) process(ctx context.Context, d store.Delivery) error {
	parse, ok := a.parsers[d.Source]
	if !ok {
		return inbox.Permanent(fmt.Errorf("no parser for source %q", d.Source))
	}
	ev, err := parse(d.EventKey, d.Body)
	if err != nil {
		// It parsed at intake; a parser that changed its mind will not
		// change it again.
		return inbox.Permanent(fmt.Errorf("parse stored delivery: %w", err))
	}
	if ev == nil {
		return nil
	}
	if ev.DeliveryID == "" {
		ev.DeliveryID = d.DeliveryID
	}
	var failed []handlerError
	for _, nh := range a.handlers {
		if err := nh.h.Handle(ctx, ev); err != nil {
			failed = append(failed, handlerError{name: nh.name, err: err})
		}
	}
	switch len(failed) {
	case 0:
		a.log.Debug("event handled", zap.String("delivery_id", d.DeliveryID), zap.String("event", d.EventKey), zap.String("repo", ev.Repository))
		return nil
	case 1:
		return failed[0]
	}
	return dispatchError(failed)
}

// handlerError names the handler that failed; Unwrap keeps the error's
// Permanent and RetryAfter visible to the inbox.
type handlerError struct {
	name string
	err  error
}

func (e handlerError) Error() string {
	msg := e.err.Error()
	if strings.HasPrefix(msg, e.name+":") {
		return msg
	}
	return e.name + ": " + msg
}
func (e handlerError) Unwrap() error { return e.err }

// dispatchError is several handlers failing on one event. It is permanent
// only when every failure is (otherwise a retry may still help one of
// them), and asks to wait as long as the longest RetryAfter.
type dispatchError []handlerError

func (e dispatchError) Error() string {
	parts := make([]string, len(e))
	for i, h := range e {
		parts[i] = h.Error()
	}
	return strings.Join(parts, "; ")
}

func (e dispatchError) Unwrap() []error {
	out := make([]error, len(e))
	for i, h := range e {
		out[i] = h
	}
	return out
}

func (e dispatchError) Permanent() bool {
	for _, h := range e {
		if !inbox.IsPermanent(h) {
			return false
		}
	}
	return true
}

func (e dispatchError) RetryAfter() time.Duration {
	var d time.Duration
	for _, h := range e {
		d = max(d, inbox.RetryAfter(h))
	}
	return d
}
