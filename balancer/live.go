package balancer

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// The live state is what outlives a table: the round-robin position,
// in-flight counts, dead marks, counters and caches. A Table points into it,
// so swapping tables leaves it untouched. Its shape (which scopes and
// backends exist) is changed only by the builder; its values are changed by
// requests, under the scope's mutex or atomically.

// backendState is one backend's live state within one scope.
type backendState struct {
	addr string
	// current is the smooth weighted round-robin value, guarded by the
	// scope's mu.
	current int64
	// deadUntil is a unix-nano deadline; the backend is skipped before it.
	deadUntil atomic.Int64
	inflight  atomic.Int64
	failures  atomic.Uint64
	codes     codeCounts
}

func (b *backendState) dead(now int64) bool {
	d := b.deadUntil.Load()
	return d != 0 && now < d
}

func (b *backendState) markDead(until time.Time) { b.deadUntil.Store(until.UnixNano()) }

func (b *backendState) revive() { b.deadUntil.Store(0) }

// scopeLive is one scope's live state.
type scopeLive struct {
	scope events.Scope
	name  string
	// mu serializes picks, which read and write every backend's current.
	mu       sync.Mutex
	backends map[string]*backendState // builder-owned shape
	// sideCur is the smooth weighted round-robin value of the stable
	// side [0] and the canary side [1], guarded by mu.
	sideCur [2]int64

	none      codeCounts // requests answered without a backend (503, 413…)
	latency   histogram
	retries   atomic.Uint64
	cacheHits atomic.Uint64

	cache       *cache
	cachePolicy events.CachePolicy

	hold holdQueue // the requests held while the scope is paused

	// canary counts the running canary's requests per side (canarystats.go).
	// Builder-owned; pools carry it to the requests.
	canary *canaryCounts
}

// registry holds the live state of every scope in the current table.
type registry struct {
	scopes map[events.Scope]*scopeLive
}

func newRegistry() *registry { return &registry{scopes: make(map[events.Scope]*scopeLive)} }

func (r *registry) scope(sc events.Scope) *scopeLive {
	l := r.scopes[sc]
	if l == nil {
		l = &scopeLive{scope: sc, name: sc.String(), backends: make(map[string]*backendState)}
		r.scopes[sc] = l
	}
	return l
}

func (l *scopeLive) backend(addr string) *backendState {
	b := l.backends[addr]
	if b == nil {
		b = &backendState{addr: addr}
		l.backends[addr] = b
	}
	return b
}

// setCache keeps the scope's cache while its policy is unchanged, so a
// rebuild for an unrelated change does not empty it.
func (l *scopeLive) setCache(p *events.CachePolicy) {
	if p == nil {
		l.cache, l.cachePolicy = nil, events.CachePolicy{}
		return
	}
	if l.cache != nil && l.cachePolicy == *p {
		return
	}
	max := p.MaxBytes
	if max <= 0 {
		max = DefaultCacheMaxBytes
	}
	l.cache, l.cachePolicy = newCache(time.Duration(p.TTL), max), *p
}

// prune drops the live state of scopes and backends the table no longer
// has. Old tables still point at what was dropped, which is harmless: a
// request that raced the swap finishes on it.
func (r *registry) prune(t *Table) {
	for sc, l := range r.scopes {
		p := t.byScope[sc]
		if p == nil {
			delete(r.scopes, sc)
			continue
		}
		for addr := range l.backends {
			if !p.has(addr) {
				delete(l.backends, addr)
			}
		}
	}
}
