package balancer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// A scope's running canary is counted per side (stable and canary):
// requests, 5xx answers and a latency histogram with the bounds of
// events.LatencyBounds. The counters only grow while the balancer runs;
// every StatsInterval the balancer publishes them, per scope with a canary,
// and the canary's analysis (in the agents) reads a window's figures from
// the deltas. Counting a request is a few atomic adds: no lock, no map and
// no allocation on the request path.

// defaultStatsInterval is how often a balancer publishes its canary
// statistics.
const defaultStatsInterval = 2 * time.Second

// canaryCounts counts what this balancer served of one canary of one
// scope since it began counting it. It belongs to the scope's live state
// while the canary runs, so table rebuilds keep it.
type canaryCounts struct {
	id             uint64
	since          time.Time
	stable, canary sideCounts
}

type sideCounts struct {
	requests atomic.Uint64
	errors   atomic.Uint64
	latency  [events.LatencyBuckets]atomic.Uint64
}

// observe counts one answered request. The request is counted first and
// its latency last, and snapshot reads them the other way round, so that a
// snapshot never holds more errors or timed requests than requests.
func (c *canaryCounts) observe(canary bool, status int, d time.Duration) {
	s := &c.stable
	if canary {
		s = &c.canary
	}
	s.requests.Add(1)
	if status >= 500 && status <= 599 {
		s.errors.Add(1)
	}
	s.latency[latencyBucket(d)].Add(1)
}

// latencyBucket is the index of the first bound at or above d (a binary
// search of 49 bounds: six comparisons), or the last bucket past them.
func latencyBucket(d time.Duration) int {
	lo, hi := 0, len(events.LatencyBounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if events.LatencyBounds[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func (s *sideCounts) snapshot() events.SideStats {
	out := events.SideStats{Latency: make([]uint64, events.LatencyBuckets)}
	for i := range s.latency {
		out.Latency[i] = s.latency[i].Load()
	}
	out.Errors = s.errors.Load()
	out.Requests = s.requests.Load()
	return out
}

// canaryCounts returns the scope's counters of canary id, new ones (from
// now) when the scope counted another canary or none. Builder-owned.
func (l *scopeLive) canaryCounts(id uint64, now time.Time) *canaryCounts {
	if id == 0 {
		l.canary = nil
		return nil
	}
	if l.canary == nil || l.canary.id != id {
		l.canary = &canaryCounts{id: id, since: now}
	}
	return l.canary
}

// newBoot is a random id for one start of the balancer.
func newBoot() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// publishStats publishes, every StatsInterval, the counters of every
// scope of the table in use that runs a canary.
func (b *Balancer) publishStats(ctx context.Context) {
	t := time.NewTicker(b.cfg.StatsInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := b.publishStatsOnce(ctx)
		switch {
		case err != nil && !failing:
			b.log.Warn("cannot publish canary statistics; a canary's analysis waits for them", "err", err)
		case err == nil && failing:
			b.log.Info("publishing canary statistics again")
		}
		failing = err != nil
	}
}

func (b *Balancer) publishStatsOnce(ctx context.Context) error {
	tbl := b.table.Load()
	if tbl == nil {
		return nil
	}
	var firstErr error
	for _, p := range tbl.pools {
		c := p.stats
		if c == nil {
			continue
		}
		st := &events.RequestStats{
			Balancer: b.cfg.Name, Boot: b.boot, CanaryID: c.id, Since: c.since.UTC(), Time: b.cfg.Now().UTC(),
			Stable: c.stable.snapshot(), Canary: c.canary.snapshot(),
		}
		pctx, cancel := context.WithTimeout(ctx, b.cfg.StatsInterval)
		err := b.store.PublishRequestStats(pctx, p.Scope, st)
		cancel()
		if err != nil && firstErr == nil && ctx.Err() == nil {
			firstErr = err
		}
	}
	return firstErr
}
