package balancer

import (
	"container/list"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Pause and maintenance come with the backends reports (Traffic at the
// scope's newest revision, as hosts do), so every balancer fed the same
// reports does the same. Both act on new requests only: a request already
// handed to a backend when a pause or a maintenance page begins finishes
// there, and so does an open WebSocket.
//
// A paused scope's new requests wait in a FIFO queue per scope, bounded
// by Config.PauseQueue (past it, 503 at once). Each waits at most the
// pause's Max from its arrival, then gets 503 with Retry-After. When a
// table that no longer pauses the scope is in use (resumed, or the scope
// is in maintenance, or gone), the held requests are released in the
// order they came and routed again from the top, on that table: they
// reach the backends a deploy made during the pause, or the maintenance
// page. A client that goes away is dropped from the queue; a balancer
// that closes answers what it holds 503 at once, so that its drain does
// not wait on a pause.
//
// Only a report ends a pause. A balancer that loses its feed keeps
// holding (each request for at most Max), and one that restarts reads the
// reports again and holds again: a pause without a resume is a pause.

// holdQueue holds one scope's paused requests. holding is set by publish
// before a table that pauses the scope is swapped in, and cleared (which
// releases the queue) after one that does not is: a request that read a
// paused table from before a resume finds holding false and routes again
// on the newer table, so none waits for a resume that already happened.
type holdQueue struct {
	mu      sync.Mutex
	holding bool
	waiting list.List // of *heldRequest, oldest first
	// total counts the requests ever held, for the metrics.
	total atomic.Uint64
}

type heldRequest struct {
	release  chan struct{}
	released bool // guarded by the queue's mu
}

// holdResult is how a hold ended.
type holdResult int

const (
	holdReleased holdResult = iota // route again: the scope is not paused (any more)
	holdExpired                    // waited the pause's Max
	holdFull                       // the queue is at its bound
	holdGone                       // the client went away
	holdClosing                    // the balancer is closing
)

// hold waits until the queue is released, wait has passed, ctx is done or
// closing is closed.
func (q *holdQueue) hold(ctx context.Context, closing <-chan struct{}, bound int, wait time.Duration) holdResult {
	q.mu.Lock()
	if !q.holding {
		q.mu.Unlock()
		return holdReleased
	}
	if q.waiting.Len() >= bound {
		q.mu.Unlock()
		return holdFull
	}
	h := &heldRequest{release: make(chan struct{})}
	el := q.waiting.PushBack(h)
	q.total.Add(1)
	q.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var res holdResult
	select {
	case <-h.release:
		return holdReleased
	case <-timer.C:
		res = holdExpired
	case <-ctx.Done():
		res = holdGone
	case <-closing:
		res = holdClosing
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if h.released {
		return holdReleased // the resume came first: go on
	}
	q.waiting.Remove(el)
	return res
}

// set starts or ends holding; ending releases every held request, oldest
// first.
func (q *holdQueue) set(holding bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.holding == holding {
		return
	}
	q.holding = holding
	if holding {
		return
	}
	for el := q.waiting.Front(); el != nil; {
		next := el.Next()
		h := q.waiting.Remove(el).(*heldRequest)
		h.released = true
		close(h.release)
		el = next
	}
}

// held is how many requests wait in the queue.
func (q *holdQueue) held() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting.Len()
}

// holds reports whether the pool's new requests are held: paused, and
// neither in maintenance (which wins) nor removed.
func (p *Pool) holds() bool {
	return p.Paused != nil && p.Maintenance == nil && !p.Removed
}

// pauseBefore starts holding for every pool t pauses, before t is in use.
func pauseBefore(t *Table) {
	for _, p := range t.pools {
		if p.holds() {
			p.live.hold.set(true)
		}
	}
}

// resumeAfter releases, once t is in use, the queues old held that t does
// not: the scope resumed, went into maintenance, or is gone (its live
// state replaced or dropped).
func resumeAfter(old, t *Table) {
	if old == nil {
		return
	}
	for _, p := range old.pools {
		if !p.holds() {
			continue
		}
		if np := t.byScope[p.Scope]; np == nil || np.live != p.live || !np.holds() {
			p.live.hold.set(false)
		}
	}
}

// gate answers or holds a request of a pool that is paused or in
// maintenance. It returns the pool to proxy to (the pool routed again
// after a resume), or nil when it has answered the request itself.
func (b *Balancer) gate(w http.ResponseWriter, r *http.Request, p *Pool, start time.Time) *Pool {
	var deadline time.Time
	for {
		switch {
		case p.Maintenance != nil:
			p.live.none.inc(http.StatusServiceUnavailable)
			p.maint.write(w, r, b.retryAfter)
			b.accessLog(r, nil, http.StatusServiceUnavailable, start)
			return nil
		case !p.holds():
			return p
		}
		if deadline.IsZero() { // from arrival, across re-holds
			deadline = start.Add(time.Duration(p.Paused.Max))
		}
		switch p.live.hold.hold(r.Context(), b.closing, b.cfg.PauseQueue, deadline.Sub(b.cfg.Now())) {
		case holdReleased:
			if p = b.table.Load().Route(r.Host); p == nil {
				b.unrouted.inc(http.StatusNotFound)
				b.pages.write(w, http.StatusNotFound, nil)
				b.accessLog(r, nil, http.StatusNotFound, start)
				return nil
			}
		case holdGone:
			p.live.none.inc(499)
			b.accessLog(r, nil, 499, start)
			return nil
		default: // expired, full, closing: the client may try again
			p.live.none.inc(http.StatusServiceUnavailable)
			pausedPage.write(w, r, b.retryAfter)
			b.accessLog(r, nil, http.StatusServiceUnavailable, start)
			return nil
		}
	}
}

// pausedPage is the answer to a request that could not be held long
// enough. It names no scope: clients see sites, not scopes.
var pausedPage = newTrafficPage("paused", "Paused for a moment",
	"This site is paused for a moment and could not answer in time. Please try again shortly.", time.Time{})

// setTraffic takes the pause and maintenance page of a live pool's
// newest reports.
func (p *Pool) setTraffic(t *events.Traffic) {
	if t == nil || p.Removed {
		return
	}
	p.Paused, p.Maintenance = t.Paused, t.Maintenance
	if m := p.Maintenance; m != nil {
		msg := m.Message
		if msg == "" {
			msg = "This site is down for maintenance. Please try again shortly."
		}
		p.maint = newTrafficPage("maintenance", "Down for maintenance", msg, m.Since)
	}
}

// renderTraffic writes the pool's pause and maintenance page into the
// table's canonical text, so that they count in its digest.
func (p *Pool) renderTraffic(sb *strings.Builder) {
	if pa := p.Paused; pa != nil {
		sb.WriteString("  paused since=" + pa.Since.UTC().Format(time.RFC3339Nano) + " max=" + time.Duration(pa.Max).String() + "\n")
	}
	if m := p.Maintenance; m != nil {
		sb.WriteString("  maintenance since=" + m.Since.UTC().Format(time.RFC3339Nano) + " message=" + strconv.Quote(m.Message) + "\n")
	}
}

// PauseView is a paused scope in /debug/table.
type PauseView struct {
	Since time.Time `json:"since"`
	Max   string    `json:"max"`
	Held  int       `json:"held"`
}

// MaintenanceView is a scope's maintenance page in /debug/table.
type MaintenanceView struct {
	Since   time.Time `json:"since"`
	Message string    `json:"message"`
}

// trafficView fills a scope view's pause and maintenance page.
func (p *Pool) trafficView(sv *ScopeView) {
	if pa := p.Paused; pa != nil {
		sv.Paused = &PauseView{Since: pa.Since.UTC(), Max: time.Duration(pa.Max).String(), Held: p.live.hold.held()}
	}
	if m := p.Maintenance; m != nil {
		sv.Maintenance = &MaintenanceView{Since: m.Since.UTC(), Message: m.Message}
	}
}

// writeTrafficMetrics writes the pause and maintenance gauges per scope.
func writeTrafficMetrics(w *promWriter, pools []*Pool) {
	gauge := func(name, kind, help string, value func(*Pool) uint64) {
		w.family(name, kind, help)
		for _, p := range pools {
			w.line(name, strconv.FormatUint(value(p), 10), "scope", p.live.name)
		}
	}
	flag := func(on bool) uint64 {
		if on {
			return 1
		}
		return 0
	}
	gauge("hoist_balancer_paused", "gauge", "1 while the scope's new requests are held (paused, not in maintenance).",
		func(p *Pool) uint64 { return flag(p.holds()) })
	gauge("hoist_balancer_held_requests", "gauge", "Requests held now because their scope is paused.",
		func(p *Pool) uint64 { return uint64(p.live.hold.held()) })
	gauge("hoist_balancer_held_requests_total", "counter", "Requests ever held because their scope was paused.",
		func(p *Pool) uint64 { return p.live.hold.total.Load() })
	gauge("hoist_balancer_maintenance", "gauge", "1 while the scope answers with its maintenance page.",
		func(p *Pool) uint64 { return flag(p.Maintenance != nil) })
}
