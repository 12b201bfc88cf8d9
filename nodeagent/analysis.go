package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// The canary analysis runs in the agents that serve a scope, one of them
// at a time: the holder of the scope's lease in the leases bucket. Every
// tick (a third of the lease's TTL) the holder renews the lease, reads
// the balancers' request statistics and decides (analysis_decide.go); a
// step, promotion or abort is published as an event conditional on the
// scope's head the decision was made on. So two agents never both act:
// the lease keeps the others waiting, and should an owner lose its lease
// without knowing (a pause past the TTL), its publish is on a head that
// has moved on, and is refused. A renewal that fails ends ownership at
// once; another agent takes the lease when it expires, and goes on from
// the statistics the stream keeps. Closing the agent releases its leases,
// so another takes over without waiting for the TTL.

// analyst runs the analyses of an agent's scopes. offer and keep are
// called by the feed and the agent; run owns the leases.
type analyst struct {
	node   string
	actor  string
	log    *slog.Logger
	now    func() time.Time
	status func(events.Scope, *events.AnalysisStatus)
	// tick, when set, is the renew and decision period; else a third of
	// the bucket's lease TTL.
	tick time.Duration

	mu    sync.Mutex
	views map[events.Scope]canaryView
	wake  chan struct{} // cap 1
}

func newAnalyst(node, actor string, log *slog.Logger, now func() time.Time, status func(events.Scope, *events.AnalysisStatus)) *analyst {
	return &analyst{node: node, actor: actor, log: log, now: now, status: status,
		views: map[events.Scope]canaryView{}, wake: make(chan struct{}, 1)}
}

// offer hands the analyst a scope's canary as folded now; ok false says
// the scope runs no canary with an analysis (none, or a hand's shift
// turned it off): its lease is released.
func (an *analyst) offer(sc events.Scope, v canaryView, ok bool) {
	an.mu.Lock()
	old, had := an.views[sc]
	if ok {
		an.views[sc] = v
	} else {
		delete(an.views, sc)
	}
	an.mu.Unlock()
	if ok != had || old.Revision != v.Revision || old.ID != v.ID {
		select {
		case an.wake <- struct{}{}:
		default:
		}
	}
}

// keep forgets the scopes the node no longer serves.
func (an *analyst) keep(scopes []events.Scope) {
	an.mu.Lock()
	defer an.mu.Unlock()
	maps.DeleteFunc(an.views, func(sc events.Scope, _ canaryView) bool { return !slices.Contains(scopes, sc) })
}

func (an *analyst) snapshot() map[events.Scope]canaryView {
	an.mu.Lock()
	defer an.mu.Unlock()
	return maps.Clone(an.views)
}

// held is a lease this analyst holds.
type held struct {
	rev    uint64 // the lease's revision: renew on it
	canary uint64
	// decided is the scope revision a decision was last published (or
	// refused) on: nothing is decided on it again.
	decided uint64
}

// leaseBucket is what the analyst needs of the leases bucket.
type leaseBucket interface {
	TTL() time.Duration
	Take(ctx context.Context, key string, value []byte) (uint64, error)
	Renew(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Holder(ctx context.Context, key string) ([]byte, bool, error)
	Release(ctx context.Context, key string, rev uint64) error
}

var _ leaseBucket = (*store.Leases)(nil)

// analysisStore is what the analyst needs of the store.
type analysisStore interface {
	RequestStats(ctx context.Context, scope events.Scope) ([]*events.RequestStats, error)
	Append(ctx context.Context, e *events.Event, opts store.AppendOptions) (*events.Event, error)
}

// run runs the analyses until ctx ends, then releases its leases.
func (an *analyst) run(ctx context.Context, st *store.Store) {
	var leases *store.Leases
	pause := 250 * time.Millisecond
	for {
		var err error
		if leases, err = st.Leases(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		an.log.Warn("cannot open the leases bucket; canary analyses wait", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
	an.loop(ctx, st, leases)
}

func (an *analyst) loop(ctx context.Context, st analysisStore, leases leaseBucket) {
	tick := an.tick
	if tick <= 0 {
		tick = leases.TTL() / 3
	}
	own := map[events.Scope]*held{}
	defer an.releaseAll(leases, own)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		views := an.snapshot()
		for sc, h := range own {
			if v, ok := views[sc]; !ok || v.ID != h.canary {
				an.release(ctx, leases, sc, h)
				delete(own, sc)
			}
		}
		for _, sc := range slices.SortedFunc(maps.Keys(views), func(a, b events.Scope) int { return strings.Compare(a.String(), b.String()) }) {
			an.step(ctx, st, leases, own, views[sc])
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-an.wake:
		}
	}
}

// step keeps or takes v's lease and, as its owner, decides and acts.
func (an *analyst) step(ctx context.Context, es analysisStore, leases leaseBucket, own map[events.Scope]*held, v canaryView) {
	sc := v.Scope
	key, value := store.LeaseKey(sc), []byte(an.node+" "+strconv.FormatUint(v.ID, 10))
	h := own[sc]
	if h != nil {
		rev, err := leases.Renew(ctx, key, value, h.rev)
		if err != nil {
			an.log.Warn("lost the lease of a canary analysis; no longer acting on it", "scope", sc, "err", err)
			delete(own, sc)
			h = nil
		} else {
			h.rev = rev
		}
	}
	if h == nil {
		rev, err := leases.Take(ctx, key, value)
		switch {
		case errors.Is(err, store.ErrLeaseHeld):
			an.status(sc, &events.AnalysisStatus{Canary: v.ID, Owner: an.holder(ctx, leases, key)})
			return
		case err != nil:
			an.status(sc, &events.AnalysisStatus{Canary: v.ID, Detail: fmt.Sprintf("cannot take the analysis's lease: %v", err)})
			return
		}
		h = &held{rev: rev, canary: v.ID}
		own[sc] = h
		an.log.Info("runs the canary analysis", "scope", sc, "canary", v.ID, "share", v.Share)
	}
	st := &events.AnalysisStatus{Canary: v.ID, Owner: an.node}
	defer func() { an.status(sc, st) }()
	if h.decided == v.Revision {
		st.Detail = fmt.Sprintf("decided on revision %d; waiting to read the decision", v.Revision)
		return
	}
	stats, err := es.RequestStats(ctx, sc)
	if err != nil {
		st.Detail = fmt.Sprintf("analysis waiting: cannot read the request statistics: %v", err)
		return
	}
	vd := decide(v, stats, an.now())
	if vd.kind == verdictWait {
		st.Detail, st.Next = vd.detail, vd.next
		return
	}
	h.decided = v.Revision
	ev, err := an.publish(ctx, es, v, vd)
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &conflict):
		// The scope moved on (a hand, or another owner): decide on what
		// it is now, once read.
		an.log.Info("a canary analysis's decision was refused: the scope moved on", "scope", sc, "err", err)
		st.Detail = "the scope moved on since the decision; deciding again on its new head"
	case err != nil:
		h.decided = 0 // not published: decide again next tick
		an.log.Warn("cannot publish a canary analysis's decision", "scope", sc, "err", err)
		st.Detail = fmt.Sprintf("cannot publish %s: %v", vd.payload().Kind(), err)
	default:
		an.log.Info("canary analysis decided", "scope", sc, "kind", ev.Kind, "revision", ev.Revision, "reason", vd.reason)
		st.Detail = fmt.Sprintf("published %s at revision %d: %s", ev.Kind, ev.Revision, vd.reason)
	}
}

// publish appends vd's event on the head v was folded at, and nowhere else.
func (an *analyst) publish(ctx context.Context, es analysisStore, v canaryView, vd verdict) (*events.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rev := v.Revision
	return es.Append(ctx, &events.Event{Scope: v.Scope, Actor: an.actor, Data: vd.payload()}, store.AppendOptions{ExpectRevision: &rev})
}

// holder names the node holding key, "" when none (or unreadable).
func (an *analyst) holder(ctx context.Context, leases leaseBucket, key string) string {
	val, ok, err := leases.Holder(ctx, key)
	if err != nil || !ok {
		return ""
	}
	node, _, _ := strings.Cut(string(val), " ")
	if events.ValidateNodeName(node) != nil {
		return ""
	}
	return node
}

func (an *analyst) release(ctx context.Context, leases leaseBucket, sc events.Scope, h *held) {
	if err := leases.Release(ctx, store.LeaseKey(sc), h.rev); err != nil {
		an.log.Debug("cannot release a canary analysis's lease; it expires", "scope", sc, "err", err)
	}
	an.status(sc, nil)
}

// releaseAll gives up every lease held, with a short deadline of its own
// (the agent's context is done by then).
func (an *analyst) releaseAll(leases leaseBucket, own map[events.Scope]*held) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for sc, h := range own {
		an.release(ctx, leases, sc, h)
	}
}

// analysisView is the analysis's view of scope sc as the book holds it.
func (b *desiredBook) analysisView(sc events.Scope) (canaryView, bool) {
	l := b.scopes[sc]
	if l == nil || !l.synced {
		return canaryView{}, false
	}
	return viewOf(l.hist.State())
}
