package balancer

import (
	"context"
	"log/slog"
	"time"

	"github.com/hoist-dev/hoist/events/store"
)

// FollowTable reads the backends, scores and drains streams with the
// balancer's own readers and fold, for a program that steers another proxy
// by the same weights (hoist haproxy). Once every stream has caught up it
// calls fn with the table, then again after each batch of messages that
// changed it, and when a score goes stale (maxAge > 0). fn runs on the
// caller's goroutine, one call at a time, and must not keep it long: the
// readers wait for it.
//
// It returns ctx's error when ctx ends, or why a reader stopped for good
// (the server refuses a stream the credential needs).
func FollowTable(ctx context.Context, store *store.Store, log *slog.Logger, defaultScore int, maxAge time.Duration, fn func(*Table)) error {
	f := startFeed(ctx, store, log)
	defer f.stop()
	fold := NewFold(defaultScore, maxAge)
	var caught [numSources]bool
	ready := func() bool {
		for _, c := range caught {
			if !c {
				return false
			}
		}
		return true
	}
	stale := time.NewTimer(time.Hour)
	stale.Stop()
	defer stale.Stop()
	emit := func() {
		t := fold.Table(time.Now())
		stale.Stop()
		if !t.staleAt.IsZero() {
			stale.Reset(max(time.Until(t.staleAt), 0) + time.Millisecond)
		}
		fn(t)
	}
	take := func(m feedMsg) bool {
		switch {
		case m.caughtUp:
			caught[m.src] = true
			return true
		case m.reset:
			fold.st.reset(m.src)
			return true
		}
		err := fold.Apply(m.msg)
		if err != nil {
			log.Warn("skipped a message that changes no weight", "stream", m.src.String(), "subject", m.msg.Subject, "seq", m.msg.Sequence, "err", err)
		}
		return err == nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.dead:
			return f.err
		case <-stale.C:
			if ready() {
				emit()
			}
		case m := <-f.msgs:
			dirty := take(m)
		batch:
			for range 4096 { // apply what is queued, then build once
				select {
				case m := <-f.msgs:
					dirty = take(m) || dirty
				default:
					break batch
				}
			}
			if dirty && ready() {
				emit()
			}
		}
	}
}
