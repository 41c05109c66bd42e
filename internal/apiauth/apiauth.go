// Package apiauth carries which bearer token authenticated an API request,
// so that handlers outside the server (the gate API) can record and check
// it. The server's middleware sets it; nothing else may.
package apiauth

import "context"

// Scope is what a token may do.
type Scope string

const (
	// ScopeNone: no valid token (handlers must not see such a request).
	ScopeNone Scope = ""
	// ScopePipeline is ROLEKEEPER_API_TOKEN, held by every pipeline: it may
	// create and read deployment gates, nothing else.
	ScopePipeline Scope = "pipeline"
	// ScopeAdmin is ROLEKEEPER_ADMIN_TOKEN: everything under /api/v1.
	ScopeAdmin Scope = "admin"
)

type ctxKey struct{}

// WithScope returns ctx carrying the scope of the token that authenticated
// the request.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// ScopeFrom returns the scope set by WithScope, or ScopeNone.
func ScopeFrom(ctx context.Context) Scope {
	s, _ := ctx.Value(ctxKey{}).(Scope)
	return s
}
