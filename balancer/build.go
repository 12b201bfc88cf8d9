package balancer

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// buildLoop is the builder: the one goroutine that owns the folded state
// and the live registry's shape. It applies feed messages, and once every
// stream has caught up it publishes a table after each batch.
func (b *Balancer) buildLoop(ctx context.Context, f *feed) {
	st, reg := newFolded(), newRegistry()
	var caught [numSources]bool
	var (
		ready     bool
		conflicts []string
		stale     = time.NewTimer(time.Hour)
	)
	stale.Stop()
	defer stale.Stop()

	// armStale wakes the builder when the next score goes stale, and at
	// least every second meanwhile, so a clock that jumps is noticed.
	armStale := func(t *Table) {
		stale.Stop()
		if !t.staleAt.IsZero() {
			stale.Reset(min(t.staleAt.Sub(b.cfg.Now())+time.Millisecond, time.Second))
		}
	}
	rebuild := func() {
		start := time.Now()
		t := buildTable(st, b.buildOptions(), b.cfg.Now(), reg)
		b.buildNanos.Store(int64(time.Since(start)))
		b.publish(t)
		if !slices.Equal(conflicts, t.conflicts) {
			conflicts = t.conflicts
			for _, c := range conflicts {
				b.log.Warn("host claimed by two scopes, the first in name order serves it", "host", c)
			}
		}
		armStale(t)
	}
	becomeReady := func() {
		for _, c := range caught {
			if !c {
				return
			}
		}
		ready = true
		rebuild()
		close(b.ready)
		b.log.Info("balancer caught up with the streams", "scopes", len(b.Table().pools), "table", b.Table().Digest()[:12])
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stale.C:
			if t := b.Table(); t.staleAt.After(b.cfg.Now()) {
				armStale(t)
			} else {
				rebuild()
			}
		case m := <-f.msgs:
			dirty := b.take(st, m, &caught)
		batch:
			for range 4096 { // apply what is queued, then build once
				select {
				case m := <-f.msgs:
					dirty = b.take(st, m, &caught) || dirty
				default:
					break batch
				}
			}
			switch {
			case !ready:
				becomeReady()
			case dirty:
				rebuild()
			}
		}
	}
}

func (b *Balancer) buildOptions() buildOptions {
	return buildOptions{defaultScore: b.cfg.DefaultScore, maxAge: b.cfg.ScoreMaxAge, defaultScope: b.cfg.DefaultScope}
}

// take folds one feed message, or records that its source caught up, and
// says whether the folded state changed.
func (b *Balancer) take(st *folded, m feedMsg, caught *[numSources]bool) bool {
	if m.caughtUp {
		caught[m.src] = true
		return true
	}
	if m.reset {
		st.reset(m.src)
		return true
	}
	return b.apply(st, m)
}

// apply folds one message and says whether it changed anything. A message
// that is rejected or cannot be folded is logged, counted and skipped.
func (b *Balancer) apply(st *folded, m feedMsg) bool {
	var err error
	switch m.src {
	case srcNodes:
		err = st.applyNode(m.msg)
	case srcScores:
		err = st.scores.Take(events.Interpret(m.msg))
	case srcReports:
		err = st.applyReport(events.Interpret(m.msg))
	}
	if errors.Is(err, errDuplicate) {
		return false
	}
	if err != nil {
		b.skipped[m.src].Add(1)
		b.log.Warn("skipped a message the balancer cannot use", "stream", m.src.String(), "subject", m.msg.Subject, "seq", m.msg.Sequence, "err", err)
		return false
	}
	return true
}
