// Package backoff is hoist's one retry pause: exponential from a first
// pause up to a limit, with jitter, so that clients that failed together
// (a server restart, a lost race for a history's head) do not come back
// together.
//
// A Backoff belongs to one retry loop and is not safe for concurrent use.
// It never decides whether to retry or how often: the loop does, by what
// failed. It only says how long to wait, and stops waiting when the
// context ends.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the pause between attempts of one retry loop. Each Next
// doubles the pause, up to the limit; Reset starts over at the first.
type Backoff struct {
	first, limit, cur time.Duration
	full              bool
}

// New returns a backoff with equal jitter: each pause is between half and
// all of the current step. Loops that wait for a server to come back use
// it: a pause never shrinks to nothing, so they do not hammer it.
func New(first, limit time.Duration) *Backoff {
	first = max(first, time.Nanosecond)
	return &Backoff{first: first, limit: max(limit, first), cur: first}
}

// Full returns a backoff with full jitter: each pause is anywhere between
// zero and the current step. Loops that compete with each other (publishers
// racing for a history's head) use it: it spreads them out the most.
func Full(first, limit time.Duration) *Backoff {
	b := New(first, limit)
	b.full = true
	return b
}

// Next returns the pause to wait now and doubles the step for the one
// after, up to the limit.
func (b *Backoff) Next() time.Duration {
	step := b.cur
	b.cur = min(2*b.cur, b.limit)
	if b.full {
		return rand.N(step + 1)
	}
	return step/2 + rand.N(step-step/2+1)
}

// Reset starts the pauses over at the first step, for a loop that made
// progress since it last failed.
func (b *Backoff) Reset() { b.cur = b.first }

// Wait sleeps for the next pause. It returns false, at once, when ctx
// ends first.
func (b *Backoff) Wait(ctx context.Context) bool {
	return Sleep(ctx, b.Next())
}

// Sleep waits for d, or until ctx ends: then it returns false.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
