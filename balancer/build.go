package balancer

import (
	"context"
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
	for i := range caught {
		caught[i] = f.targets[i] == 0
	}
	var (
		ready     bool
		conflicts []string
		stale     = time.NewTimer(time.Hour)
		fallback  = time.NewTicker(2 * time.Second)
	)
	stale.Stop()
	defer stale.Stop()
	defer fallback.Stop()

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
		fallback.Stop()
		rebuild()
		close(b.ready)
		b.log.Info("balancer caught up with the streams", "scopes", len(b.Table().pools), "table", b.Table().Digest()[:12])
	}
	if !ready {
		becomeReady()
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
		case <-fallback.C:
			for i := range caught {
				if !caught[i] && f.pendingZero(ctx, source(i)) && len(f.msgs) == 0 {
					caught[i] = true
				}
			}
			becomeReady()
		case m := <-f.msgs:
			dirty := b.apply(st, m)
			caught[m.src] = caught[m.src] || m.seq >= f.targets[m.src] || m.pending == 0
		batch:
			for range 4096 { // apply what is queued, then build once
				select {
				case m := <-f.msgs:
					dirty = b.apply(st, m) || dirty
					caught[m.src] = caught[m.src] || m.seq >= f.targets[m.src] || m.pending == 0
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

// apply folds one message and says whether it changed anything. A message
// that cannot be decoded or folded is logged, counted and skipped.
func (b *Balancer) apply(st *folded, m feedMsg) bool {
	var err error
	switch m.src {
	case srcEvents:
		var e *events.Event
		if e, err = events.Decode(m.data); err == nil {
			err = st.applyEvent(e)
		}
	case srcScores:
		var e *events.Event
		if e, err = events.Decode(m.data); err == nil {
			err = st.applyScore(e)
		}
	case srcReports:
		var r *events.BackendsReport
		if r, err = events.DecodeBackendsReport(m.data); err == nil {
			st.applyReport(r)
		}
	}
	if err != nil {
		b.skipped[m.src].Add(1)
		b.log.Warn("skipped a message the balancer cannot use", "stream", m.src.String(), "subject", m.subject, "seq", m.seq, "err", err)
		return false
	}
	return true
}
