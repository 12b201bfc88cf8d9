package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// These tests run the analysis against a real store on an embedded
// server: a fake balancer publishes statistics as a balancer does, and
// each analyst follows the scope's history as an agent's feed does.

const leaseTTL = 1500 * time.Millisecond

var canaryScopeName = events.MustParseScope("acme.prod.web")

// openStore opens a store of its own connection, with the tests' short
// lease TTL (every store of a test sets the bucket up alike).
func openStore(t *testing.T, srv *natstest.Server) (*store.Store, *nats.Conn) {
	t.Helper()
	nc := srv.Connect(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, nc, store.Options{LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	return st, nc
}

// startCanary deploys the scope and starts a canary at share 25 with an
// analysis of steps 25, 50, 100 at 1s.
func startCanary(t *testing.T, st *store.Store) {
	t.Helper()
	spec := events.Spec{Image: "web:1", Replicas: 1, Port: 8080}
	next := spec
	next.Image = "web:2"
	auto := &events.Analysis{Steps: []int{25, 50, 100}, Interval: events.Duration(time.Second), MaxErrorRate: 0.01, MinRequests: 100}
	for _, p := range []events.Payload{&events.Deployed{Spec: spec}, &events.CanaryStarted{Spec: next, Share: 25, Replicas: 1, Auto: auto}} {
		if _, err := st.Append(t.Context(), &events.Event{Scope: canaryScopeName, Actor: "ci", Data: p}, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeBalancer publishes, every 50ms, counters that grow by 50 canary
// requests, errPct percent of them 5xx, all answered in about 5ms.
func fakeBalancer(t *testing.T, st *store.Store, name string, canaryID uint64, errPct uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	since := time.Now().UTC()
	wg.Go(func() {
		var req, errs uint64
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			req += 50
			errs = req * errPct / 100
			lat := make([]uint64, events.LatencyBuckets)
			lat[bucketOf(5*time.Millisecond)] = req
			s := &events.RequestStats{Balancer: name, Boot: "boot-" + name, Time: time.Now().UTC(), Since: since, CanaryID: canaryID,
				Canary: events.SideStats{Requests: req, Errors: errs, Latency: lat},
				Stable: events.SideStats{Latency: make([]uint64, events.LatencyBuckets)}}
			if err := st.PublishRequestStats(ctx, canaryScopeName, s); err != nil && ctx.Err() == nil {
				t.Errorf("publish stats: %v", err)
				return
			}
		}
	})
}

// runner is one analyst with a feed that polls the scope's history.
type runner struct {
	an     *analyst
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	status *events.AnalysisStatus
}

func startRunner(t *testing.T, st *store.Store, node string) *runner {
	t.Helper()
	r := &runner{done: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	r.an = newAnalyst(node, "hoist-agent@"+node, log, time.Now, func(_ events.Scope, a *events.AnalysisStatus) {
		r.mu.Lock()
		r.status = a
		r.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() { r.an.run(ctx, st) })
	wg.Go(func() { // the feed
		for ctx.Err() == nil {
			if h, err := st.ScopeHistory(ctx, canaryScopeName, 0); err == nil {
				hist := projector.NewHistory(canaryScopeName)
				for _, rec := range h.Records {
					_ = hist.Take(rec)
				}
				v, ok := viewOf(hist.State())
				r.an.offer(canaryScopeName, v, ok)
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // the feed's poll interval
			}
		}
	})
	go func() { wg.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) analysis() *events.AnalysisStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// canaryEvents returns the canary events after the start, as "kind share".
func canaryEvents(t *testing.T, st *store.Store) ([]string, []*events.Event) {
	t.Helper()
	h, err := st.ScopeHistory(t.Context(), canaryScopeName, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var evs []*events.Event
	for _, e := range h.Events() {
		switch d := e.Data.(type) {
		case *events.CanaryShifted:
			out = append(out, fmt.Sprintf("shifted %d", d.Share))
		case *events.CanaryPromoted:
			out = append(out, "promoted")
		case *events.CanaryAborted:
			out = append(out, "aborted")
		default:
			continue
		}
		evs = append(evs, e)
	}
	return out, evs
}

func waitEvents(t *testing.T, st *store.Store, want string) []*events.Event {
	t.Helper()
	var evs []*events.Event
	natstest.Eventually(t, 30*time.Second, func() error {
		var got []string
		got, evs = canaryEvents(t, st)
		if strings.Join(got, ", ") != want {
			return fmt.Errorf("canary events %q, want %q", got, want)
		}
		return nil
	})
	return evs
}

// A canary that answers 5xx on 5% of its requests is aborted by the
// analysis, and the abort says so.
func TestAnalysisAbortsAFailingCanary(t *testing.T) {
	srv := natstest.Start(t)
	st, _ := openStore(t, srv)
	startCanary(t, st)
	fakeBalancer(t, st, "lb-1", 2, 5)
	startRunner(t, st, "node-1")

	evs := waitEvents(t, st, "aborted")
	d := evs[0].Data.(*events.CanaryAborted)
	if !d.Automatic || d.Figures == nil || d.Figures.Requests < 100 || evs[0].Actor != "hoist-agent@node-1" {
		t.Fatalf("abort %+v by %s", d, evs[0].Actor)
	}
	if r := d.Figures.ErrorRate(); r < 0.045 || r > 0.055 {
		t.Errorf("abort's error rate %.3f, want 5%%", r)
	}
	// The window's edges fall between requests: the rate is 5% ± a request.
	if want := fmt.Sprintf("canary 5xx %.1f%% over %d requests > 1%%", 100*d.Figures.ErrorRate(), d.Figures.Requests); d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}

// A healthy canary is stepped on, then promoted, each step once, each
// with the figures it was based on.
func TestAnalysisPromotesAHealthyCanary(t *testing.T) {
	srv := natstest.Start(t)
	st, _ := openStore(t, srv)
	startCanary(t, st)
	fakeBalancer(t, st, "lb-1", 2, 0)
	fakeBalancer(t, st, "lb-2", 2, 0)
	r := startRunner(t, st, "node-1")

	natstest.Eventually(t, 10*time.Second, func() error {
		if a := r.analysis(); a == nil || a.Owner != "node-1" || a.Canary != 2 {
			return fmt.Errorf("analysis status %+v, want owned by node-1", a)
		}
		return nil
	})
	evs := waitEvents(t, st, "shifted 50, shifted 100, promoted")
	for _, e := range evs {
		var f *events.Figures
		switch d := e.Data.(type) {
		case *events.CanaryShifted:
			f = d.Figures
			if !d.Automatic || !strings.HasPrefix(d.Reason, fmt.Sprintf("step %d%%: canary 5xx 0.0%% over ", d.Share)) {
				t.Errorf("shift %+v", d)
			}
		case *events.CanaryPromoted:
			f = d.Figures
		}
		if f == nil || f.Requests < 100 || f.Errors != 0 || f.Balancers != 2 || time.Duration(f.Window) < time.Second {
			t.Errorf("%s at revision %d: figures %+v", e.Kind, e.Revision, f)
		}
	}
}

// An owner that dies hands over: the other agent takes the lease once it
// expires and goes on; every step is published once; and a decision of
// the stale owner, on the head it last saw, is refused.
func TestAnalysisHandsOverFromADeadOwner(t *testing.T) {
	srv := natstest.Start(t)
	st, _ := openStore(t, srv)
	startCanary(t, st)
	fakeBalancer(t, st, "lb-1", 2, 0)

	stA, ncA := openStore(t, srv)
	stB, _ := openStore(t, srv)
	a := startRunner(t, stA, "node-1")
	natstest.Eventually(t, 10*time.Second, func() error {
		if s := a.analysis(); s == nil || s.Owner != "node-1" {
			return fmt.Errorf("node-1's analysis status %+v, want it the owner", s)
		}
		return nil
	})
	b := startRunner(t, stB, "node-2")
	natstest.Eventually(t, 10*time.Second, func() error {
		if s := b.analysis(); s == nil || s.Owner != "node-1" {
			return fmt.Errorf("node-2's analysis status %+v, want it to name node-1 the owner", s)
		}
		return nil
	})
	evs := waitEvents(t, st, "shifted 50")
	stale := canaryView{Scope: canaryScopeName, ID: 2, Share: 25, Revision: evs[0].Revision - 1,
		Auto: events.Analysis{Steps: []int{25, 50, 100}, Interval: events.Duration(time.Second), MaxErrorRate: 0.01, MinRequests: 100}}

	// node-1 dies: its connection goes first, so it cannot release, and
	// node-2 waits for the lease to expire.
	ncA.Close()
	a.stop()

	evs = waitEvents(t, st, "shifted 50, shifted 100, promoted")
	if evs[1].Actor != "hoist-agent@node-2" || evs[2].Actor != "hoist-agent@node-2" {
		t.Errorf("steps after the handover by %s and %s, want node-2", evs[1].Actor, evs[2].Actor)
	}

	// The stale owner's decision, on the head before its own step.
	an := newAnalyst("node-1", "hoist-agent@node-1", slog.New(slog.DiscardHandler), time.Now, func(events.Scope, *events.AnalysisStatus) {})
	_, err := an.publish(t.Context(), st, stale, verdict{kind: verdictShift, share: 50, reason: "stale", figures: events.Figures{Requests: 100}})
	var conflict *store.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("a stale owner's publish: %v, want a revision conflict", err)
	}
	if got, _ := canaryEvents(t, st); strings.Join(got, ", ") != "shifted 50, shifted 100, promoted" {
		t.Errorf("after the stale publish: %v", got)
	}
}
