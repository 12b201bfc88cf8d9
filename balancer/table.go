package balancer

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// Table is one immutable snapshot of the routing and weight table. It is
// built by the builder and read concurrently by every request; nothing in it
// changes after it is published, except the live state its pools point to.
type Table struct {
	pools   []*Pool // sorted by scope
	byScope map[events.Scope]*Pool
	exact   map[string]*Pool // host → pool
	wild    map[string]*Pool // "example.com" for "*.example.com"
	def     *Pool

	text   string
	digest string
	// staleAt is when the next score goes stale (zero: never); the table
	// must be rebuilt then.
	staleAt time.Time
	// conflicts names hosts claimed by more than one scope.
	conflicts []string
}

// Pool is one scope's routing entry: its hosts and weighted backends.
type Pool struct {
	Scope      events.Scope
	Hosts      []string
	HealthPath string
	Cache      *events.CachePolicy
	Backends   []Backend // sorted by address
	Removed    bool      // the scope was removed: its hosts answer 503
	// Traffic is the scope's canary split, pause and maintenance page, nil
	// when it asks nothing. CanaryID names its running canary (0: none):
	// the revision that started it, in sticky cookies and per-side counts.
	Traffic  *events.Traffic
	CanaryID uint64
	// sides says which sides have backends; see pickSide.
	sides sides
	// stats counts the canary's requests per side; nil without a canary.
	stats *canaryCounts
	// Paused holds new requests; Maintenance answers them with a page
	// (pause.go). Neither is set on a removed pool.
	Paused      *events.Pause
	Maintenance *events.Maintenance

	live  *scopeLive
	cache *cache       // live.cache when the table was built
	maint *trafficPage // the maintenance page, with Maintenance
}

// Backend is one backend of a pool with its effective weight.
type Backend struct {
	Addr    string
	Nodes   []string // the nodes announcing it
	Slots   []string // its slots (NODE#INDEX) as the nodes report them, sorted
	Score   int      // the effective score: given, or the default
	Scored  bool     // false when Score is the default (none given, or stale)
	Drained bool     // a node announcing it is drained
	// Canary marks a backend that runs the scope's canary's spec. With
	// no canary in the pool's Traffic (an abort, before its replicas
	// stop), it gets a request only when no stable backend is left.
	Canary bool
	Weight int

	st *backendState
}

func (p *Pool) has(addr string) bool {
	_, ok := slices.BinarySearchFunc(p.Backends, addr, func(b Backend, a string) int { return strings.Compare(b.Addr, a) })
	return ok
}

// buildOptions are the Config fields that shape a table.
type buildOptions struct {
	defaultScore int
	maxAge       time.Duration
	defaultScope events.Scope
}

// buildTable turns the folded state into a table, attaching each pool and
// backend to its live state in reg (created as needed; reg is pruned
// after). Its content depends only on f, opts and, with a max age, now.
func buildTable(f *folded, opts buildOptions, now time.Time, reg *registry) *Table {
	t := &Table{
		byScope: make(map[events.Scope]*Pool),
		exact:   make(map[string]*Pool),
		wild:    make(map[string]*Pool),
	}
	// Live scopes claim their hosts first. A removed scope keeps the hosts
	// no live scope claims, with no backends: its clients get 503 and
	// Retry-After (it may come back), not 404 (never heard of it).
	var removed []events.Scope
	for _, sc := range f.scopes() {
		if f.route(sc).removed {
			removed = append(removed, sc)
			continue
		}
		t.addPool(f, sc, opts, now, reg, false)
	}
	for _, sc := range removed {
		t.addPool(f, sc, opts, now, reg, true)
	}
	slices.SortFunc(t.pools, func(a, b *Pool) int { return strings.Compare(a.Scope.String(), b.Scope.String()) })
	if !opts.defaultScope.IsZero() {
		t.def = t.byScope[opts.defaultScope]
	}
	t.text = t.render()
	sum := sha256.Sum256([]byte(t.text))
	t.digest = hex.EncodeToString(sum[:])
	reg.prune(t)
	return t
}

// addPool adds one scope's pool and routes its hosts. A removed scope's
// pool has no backends and yields every host already taken.
func (t *Table) addPool(f *folded, sc events.Scope, opts buildOptions, now time.Time, reg *registry, removed bool) {
	rt := f.route(sc)
	p := &Pool{Scope: sc, Removed: removed, live: reg.scope(sc), Hosts: rt.hosts, HealthPath: rt.healthPath}
	if !rt.traffic.IsZero() && !removed {
		tr := *rt.traffic
		p.Traffic = &tr
		if tr.Canary != nil {
			p.CanaryID = tr.Canary.ID
		}
	}
	if rt.cache != nil && !removed {
		c := *rt.cache
		p.Cache = &c
	}
	p.live.setCache(p.Cache)
	p.cache = p.live.cache
	p.setTraffic(rt.traffic)
	p.stats = p.live.canaryCounts(p.CanaryID, now)
	if !removed {
		p.Backends = t.backends(f, sc, opts, now, p.live)
		p.sides = sidesOf(p.Backends)
	}
	t.pools = append(t.pools, p)
	t.byScope[sc] = p
	for _, h := range p.Hosts {
		m, key := t.exact, h
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			m, key = t.wild, rest
		}
		if prev, taken := m[key]; taken {
			if !removed {
				// Live pools come in scope order, so the first scope keeps it.
				t.conflicts = append(t.conflicts, h+" (claimed by "+prev.Scope.String()+" and "+sc.String()+")")
			}
			continue
		}
		m[key] = p
	}
}

// backends computes one scope's backends and weights.
func (t *Table) backends(f *folded, sc events.Scope, opts buildOptions, now time.Time, live *scopeLive) []Backend {
	nodesOf := make(map[string][]string)
	slotsOf := make(map[string][]string)
	canary := make(map[string]bool)
	for node, rep := range f.reports[sc] {
		for _, a := range rep.Backends {
			nodesOf[a] = append(nodesOf[a], node)
			if i, ok := rep.Slots[a]; ok {
				slotsOf[a] = append(slotsOf[a], events.Slot(node, i))
			}
			if i, ok := rep.Canary[a]; ok {
				slotsOf[a] = append(slotsOf[a], events.CanarySlot(node, i))
				canary[a] = true
			}
		}
	}
	out := make([]Backend, 0, len(nodesOf))
	for addr, nodes := range nodesOf {
		slices.Sort(nodes)
		slices.Sort(slotsOf[addr])
		b := Backend{Addr: addr, Nodes: nodes, Slots: slotsOf[addr], Score: opts.defaultScore, Canary: canary[addr], st: live.backend(addr)}
		if s, ok := f.score(sc, addr, slotsOf[addr]); ok {
			fresh := opts.maxAge <= 0 || now.Sub(s.Time) < opts.maxAge
			if fresh {
				b.Score, b.Scored = s.Value, true
				if opts.maxAge > 0 {
					if at := s.Time.Add(opts.maxAge); t.staleAt.IsZero() || at.Before(t.staleAt) {
						t.staleAt = at
					}
				}
			}
		}
		for _, n := range nodes {
			if f.drained[n] {
				b.Drained = true
			}
		}
		b.Weight = b.Score
		if b.Drained {
			b.Weight = 0
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Backend) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// score is the latest score given to a backend: to its host:port, or to
// its slot (NODE#INDEX), which the replica that replaces it in a rollout
// inherits.
func (f *folded) score(sc events.Scope, addr string, slots []string) (projector.Score, bool) {
	best, found := f.scores.Lookup(sc, addr)
	for _, slot := range slots {
		if s, ok := f.scores.Lookup(sc, slot); ok && (!found || s.Sequence > best.Sequence) {
			best, found = s, true
		}
	}
	return best, found
}

// render writes the table's canonical text: the same content always
// renders the same way.
func (t *Table) render() string {
	var sb strings.Builder
	sb.WriteString("default ")
	if t.def != nil {
		sb.WriteString(t.def.Scope.String())
	} else {
		sb.WriteString("-")
	}
	sb.WriteByte('\n')
	for _, p := range t.pools {
		sb.WriteString("scope " + p.Scope.String() + "\n")
		if p.Removed {
			sb.WriteString("  removed\n")
		}
		if len(p.Hosts) > 0 {
			sb.WriteString("  hosts " + strings.Join(p.Hosts, " ") + "\n")
		}
		if p.HealthPath != "" {
			sb.WriteString("  health " + p.HealthPath + "\n")
		}
		p.renderTraffic(&sb)
		if p.Cache != nil {
			sb.WriteString("  cache ttl=" + p.Cache.TTL.String() + " max_bytes=" + strconv.FormatInt(p.Cache.MaxBytes, 10) + "\n")
		}
		if c := p.canary(); c != nil {
			sb.WriteString("  canary id=" + strconv.FormatUint(c.ID, 10) + " share=" + strconv.Itoa(c.Share))
			if c.Sticky {
				sb.WriteString(" sticky")
			}
			sb.WriteByte('\n')
		}
		for _, b := range p.Backends {
			sb.WriteString("  backend " + b.Addr + " nodes=" + strings.Join(b.Nodes, ",") +
				" score=" + strconv.Itoa(b.Score))
			if !b.Scored {
				sb.WriteString("(default)")
			}
			sb.WriteString(" weight=" + strconv.Itoa(b.Weight))
			if b.Drained {
				sb.WriteString(" drained")
			}
			if b.Canary {
				sb.WriteString(" " + p.sideOf(&b).String())
			}
			sb.WriteByte('\n')
		}
	}
	for _, c := range t.conflicts {
		sb.WriteString("conflict " + c + "\n")
	}
	return sb.String()
}

// String is the table's canonical text.
func (t *Table) String() string { return t.text }

// Digest is a hash of the canonical text: equal digests, equal tables.
func (t *Table) Digest() string { return t.digest }

// Pools returns the pools in scope order. They are shared: do not modify.
func (t *Table) Pools() []*Pool { return t.pools }

// Pool returns one scope's pool, or nil.
func (t *Table) Pool(sc events.Scope) *Pool { return t.byScope[sc] }

// Weight returns a backend's weight in a scope; ok is false when the scope
// has no such backend.
func (t *Table) Weight(sc events.Scope, addr string) (w int, ok bool) {
	p := t.byScope[sc]
	if p == nil {
		return 0, false
	}
	for _, b := range p.Backends {
		if b.Addr == addr {
			return b.Weight, true
		}
	}
	return 0, false
}
