package change

import (
	"context"
	"errors"
	"fmt"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
)

// Builder decides the payload to publish from the scope's folded history,
// or refuses with a *Refusal.
type Builder func(h *projector.History) (events.Payload, error)

// Request is one publish to a scope.
type Request struct {
	Scope events.Scope
	Actor string
	// Expect, when not nil, is the revision the head must be: checked
	// before Build runs.
	Expect *uint64
	Build  Builder
	// Rejected, when not nil, is told once about the messages of the
	// history that every reader skips (they hold their revisions).
	Rejected func([]events.Record)
}

// Publish reads the scope's history, folds it, builds the event from the
// fold, checks it against the fold and appends it on the head it read. It
// returns the stored event.
func Publish(ctx context.Context, st *store.Store, req Request) (*events.Event, error) {
	var (
		h      *projector.History
		head   events.Head
		warned bool
	)
	read := func(ctx context.Context) (events.Head, error) {
		r, err := st.ScopeHistory(ctx, req.Scope, 0)
		if err != nil {
			return events.Head{}, fmt.Errorf("read history of %s: %w", req.Scope, err)
		}
		h, _ = projector.Fold(req.Scope, r.Records)
		if !warned && req.Rejected != nil { // once, not on every retry
			if rej := r.Rejected(); len(rej) > 0 {
				req.Rejected(rej)
			}
		}
		warned = true
		head = r.Head
		return head, nil
	}
	build := func() (*events.Event, error) {
		payload, err := req.Build(h)
		if err != nil {
			return nil, err
		}
		ev := &events.Event{Scope: req.Scope, Kind: payload.Kind(), Data: payload, Actor: req.Actor}
		if err := ev.Validate(); err != nil {
			return nil, err
		}
		if err := h.Check(ev); err != nil {
			return nil, refusef("", "%s: cannot publish %s at revision %d: %w; nothing was published", req.Scope, payload.Kind(), head.Revision+1, err)
		}
		return ev, nil
	}
	return AppendOnHead(ctx, st, req.Scope.String(), req.Expect, read, build)
}

// AppendOnHead reads a history's head (read), builds the event to append
// from what it read (build), and appends it on that head. expect, when not
// nil, must equal the head: it is checked before build runs, and a race
// lost after it fails with the *store.ConflictError. Without it, an append
// that loses a race is rebuilt on the new head and retried, up to
// store.MaxRaces times with store.RaceBackoff between: this is the one
// layer of race retries, as the store reports a conflict on a given Head
// rather than retrying it.
func AppendOnHead(ctx context.Context, st *store.Store, name string, expect *uint64,
	read func(context.Context) (events.Head, error), build func() (*events.Event, error)) (*events.Event, error) {
	pause := store.RaceBackoff()
	for attempt := 1; ; attempt++ {
		head, err := read(ctx)
		if err != nil {
			return nil, err
		}
		if expect != nil && *expect != head.Revision {
			return nil, &store.ConflictError{Subject: name, Expected: *expect, Actual: head.Revision}
		}
		ev, err := build()
		if err != nil {
			return nil, err
		}
		stored, err := st.Append(ctx, ev, store.AppendOptions{Head: &head})
		var conflict *store.ConflictError
		switch {
		case !errors.As(err, &conflict):
			return stored, err
		case expect != nil:
			return nil, err
		case attempt < store.MaxRaces:
			// Another publisher won: decide again on the new head, after a
			// jittered pause so that racers spread out.
			if !pause.Wait(ctx) {
				return nil, fmt.Errorf("publish to %s: %w", name, ctx.Err())
			}
			continue
		}
		return nil, fmt.Errorf("publish to %s: lost %d races to other publishers; try again", name, attempt)
	}
}
