package api

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/backoff"
	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// The hub follows the streams once for every live reader of the API: the
// SSE clients and the dashboard's live parts. It keeps
//
//   - the recent scope events, numbered as every reader numbers them, in a
//     ring, so an SSE client that comes back with Last-Event-ID (the
//     HOIST_EVENTS sequence of the last event it got) is handed exactly
//     what it missed;
//   - the latest accepted status report of each node and scope;
//   - the balancer's fold of backends, scores and drains (balancer.Fold),
//     for live weights.
//
// Each stream has its own goroutine; all state sits behind one mutex, and
// subscribers get messages over buffered channels. A subscriber that falls
// behind by a whole buffer is dropped (its channel closed): it reconnects
// and resumes from the ring. The hub's goroutines are owned by the Server,
// which stops and waits for them.

// ringSize is how many scope events the hub keeps for resuming clients.
const ringSize = 4096

// item is one thing the hub hands subscribers.
type item struct {
	kind   string // "event", "node", "score", "backends", "status", "reset"
	rec    events.Record
	seq    uint64 // the HOIST_EVENTS sequence of an "event": its SSE id
	stream string
}

type subscriber struct {
	ch     chan item
	closed bool
}

type hub struct {
	store *store.Store
	log   *slog.Logger

	mu   sync.Mutex
	ring []item // scope events, oldest first
	// evicted is the sequence of the last event dropped from the ring: a
	// client that has less cannot resume from it.
	evicted uint64
	last    uint64 // the sequence of the last scope event
	reader  *events.Reader
	status  map[string]events.Record // by subject: the latest accepted report
	fold    *balancer.Fold
	subs    map[*subscriber]struct{}
	caught  map[string]bool
	ready   chan struct{}
	// followed counts the messages read, by stream, for /metrics.
	followed map[string]uint64
	skipped  map[string]uint64
}

func newHub(st *store.Store, log *slog.Logger) *hub {
	return &hub{
		store: st, log: log, reader: events.NewReader(),
		status: map[string]events.Record{}, fold: balancer.NewFold(0, 0),
		subs: map[*subscriber]struct{}{}, caught: map[string]bool{}, ready: make(chan struct{}),
		followed: map[string]uint64{}, skipped: map[string]uint64{},
	}
}

// follows are the reads the hub runs, keyed by a name for its catch-up.
var follows = map[string]store.Follow{
	"scopes":   {Stream: events.EventsStream, Filter: events.AllScopesFilter},
	"nodes":    {Stream: events.EventsStream, Filter: events.AllNodesFilter},
	"scores":   {Stream: events.ScoresStream, Filter: events.AllScoresFilter},
	"backends": {Stream: events.BackendsStream, Filter: events.AllBackendsFilter},
	"status":   {Stream: events.ReportsStream, Filter: events.AllStatusFilter},
}

// run follows every stream on goroutines of g until it stops.
func (h *hub) run(g *lifecycle.Group) {
	for name, f := range follows {
		g.Go("api follow "+name, func(ctx context.Context) {
			pause := backoff.New(time.Second, 30*time.Second)
			for ctx.Err() == nil {
				err := h.store.Follow(ctx, f, func(m events.Message) { h.take(name, m) }, func() { h.caughtUp(name) })
				switch {
				case ctx.Err() != nil:
					return
				case errors.Is(err, store.ErrDiverged):
					h.log.Warn("the stream no longer holds what the API read; reading it again", "stream", f.Stream, "err", err)
					h.reset(name)
					continue
				}
				h.log.Error("stream reader stopped; retrying", "stream", f.Stream, "filter", f.Filter, "err", err)
				pause.Wait(ctx)
			}
		})
	}
}

func (h *hub) caughtUp(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.caught[name] = true
	if len(h.caught) == len(follows) {
		select {
		case <-h.ready:
		default:
			close(h.ready)
		}
	}
}

// reset forgets what one read folded; subscribers are told to read again.
func (h *hub) reset(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch name {
	case "scopes":
		h.ring, h.evicted, h.last = nil, 0, 0
		h.reader = events.NewReader()
	case "nodes":
		h.fold.Reset(events.EventsStream)
	case "scores":
		h.fold.Reset(events.ScoresStream)
	case "backends":
		h.fold.Reset(events.BackendsStream)
	case "status":
		h.status = map[string]events.Record{}
	}
	h.broadcast(item{kind: "reset"})
}

func (h *hub) take(name string, m events.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.followed[m.Stream]++
	var it item
	switch name {
	case "scopes":
		rec := h.reader.Read(m)
		if rec.Duplicate {
			return
		}
		it = item{kind: "event", rec: rec, seq: m.Sequence}
		h.last = m.Sequence
		if len(h.ring) == ringSize {
			h.evicted = h.ring[0].seq
			h.ring = append(h.ring[:0:0], h.ring[1:]...)
		}
		h.ring = append(h.ring, it)
	case "nodes":
		rec := events.Interpret(m)
		if err := h.fold.Apply(m); err != nil {
			h.skip(m, err)
		}
		it = item{kind: "node", rec: rec}
	case "scores", "backends":
		if err := h.fold.Apply(m); err != nil {
			h.skip(m, err)
		}
		it = item{kind: map[string]string{"scores": "score", "backends": "backends"}[name], rec: events.Interpret(m)}
	case "status":
		rec := events.Interpret(m)
		if rec.Err != nil {
			h.skip(m, rec.Err) // never shown as a node's status
			return
		}
		h.status[m.Subject] = rec
		it = item{kind: "status", rec: rec}
	}
	it.stream = m.Stream
	h.broadcast(it)
}

// skip counts a message the hub cannot use (/metrics has the counts) and
// logs it once, as the balancer does: the hub reads each message once.
// Called with h.mu held.
func (h *hub) skip(m events.Message, err error) {
	h.skipped[m.Stream]++
	h.log.Warn("skipped a message the API cannot use", "stream", m.Stream, "subject", m.Subject, "seq", m.Sequence, "err", err)
}

// broadcast hands it to every subscriber; one whose buffer is full is
// dropped. Called with h.mu held.
func (h *hub) broadcast(it item) {
	for s := range h.subs {
		select {
		case s.ch <- it:
		default:
			close(s.ch)
			s.closed = true
			delete(h.subs, s)
		}
	}
}

// subscribe registers a subscriber. With resume, it also returns the
// scope events after sequence after, or ok false when the ring no longer
// holds them all (the client must read again).
func (h *hub) subscribe(after uint64, resume bool) (s *subscriber, past []item, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s = &subscriber{ch: make(chan item, 256)}
	h.subs[s] = struct{}{}
	if !resume {
		return s, nil, true
	}
	if after < h.evicted {
		return s, nil, false
	}
	for _, it := range h.ring {
		if it.seq > after {
			past = append(past, it)
		}
	}
	return s, past, true
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.closed {
		delete(h.subs, s)
		close(s.ch)
		s.closed = true
	}
}

// lastSeq is the HOIST_EVENTS sequence of the last scope event read.
func (h *hub) lastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// statuses returns the latest status reports, merged per node.
func (h *hub) statuses() []*events.NodeStatus {
	h.mu.Lock()
	recs := make([]events.Record, 0, len(h.status))
	for _, r := range h.status {
		recs = append(recs, r)
	}
	h.mu.Unlock()
	return events.MergeStatuses(recs)
}

// table builds the live weight table.
func (h *hub) table(now time.Time) *balancer.Table {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fold.Table(now)
}

func (h *hub) counts() (followed, skipped map[string]uint64, subs int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	followed, skipped = map[string]uint64{}, map[string]uint64{}
	for k, v := range h.followed {
		followed[k] = v
	}
	for k, v := range h.skipped {
		skipped[k] = v
	}
	return followed, skipped, len(h.subs)
}
