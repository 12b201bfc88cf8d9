//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/nodeagent"
)

// noopRuntime runs nothing: the agents under test reconcile scopes of zero
// replicas, so only the event path is measured.
type noopRuntime struct{}

var _ deploy.Runtime = noopRuntime{}

func (noopRuntime) List(context.Context) ([]deploy.Replica, error) { return nil, nil }
func (noopRuntime) Start(context.Context, deploy.ReplicaSpec) (deploy.Replica, error) {
	return deploy.Replica{}, errors.New("the benchmark runtime starts nothing")
}
func (noopRuntime) Stop(context.Context, string, time.Duration) error   { return nil }
func (noopRuntime) Remove(context.Context, string) error                { return nil }
func (noopRuntime) Tail(context.Context, string, int) ([]string, error) { return nil, nil }
func (noopRuntime) Health(context.Context, string) (deploy.Health, error) {
	return deploy.Health{State: deploy.StateExited}, nil
}
func (noopRuntime) Watch(ctx context.Context) <-chan deploy.Change {
	ch := make(chan deploy.Change)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// fleet is n real node agents (nodeagent.Open) in this process, each with
// its own NATS connection, durable consumer and reference file, exactly as
// `hoist agent` runs them, minus the replicas.
type fleet struct {
	agents []*nodeagent.Agent
}

// agentSpec says how to open agent i.
type agentSpec struct {
	url    string
	dir    string // reference files go to dir/<name>/reference.json
	prefix string // node names: prefix-0001 …
	scopes func(i int) []events.Scope
	// folded and applied are called from agent i's feed (see
	// nodeagent.Options.OnFolded and OnApplied); either may be nil.
	folded, applied func(i int, scope events.Scope, rev uint64)
	log             *slog.Logger
}

func (s agentSpec) name(i int) string { return fmt.Sprintf("%s-%04d", s.prefix, i) }

// openFleet opens n agents; they connect in the background.
func openFleet(s agentSpec, n int) (*fleet, error) {
	f := &fleet{}
	for i := range n {
		name := s.name(i)
		opts := nodeagent.Options{
			Node:          nodeagent.Node{Name: name, Scopes: s.scopes(i), Advertise: "127.0.0.1"},
			ReferenceFile: filepath.Join(s.dir, name, "reference.json"),
			Runtime:       noopRuntime{},
			RuntimeName:   "bench",
			Connect: func(context.Context) (*nats.Conn, error) {
				return store.Connect(store.ConnectOptions{URL: s.url, Name: "agent " + name, Daemon: true})
			},
			Logger:  s.log.With("node", name),
			Version: "bench",
		}
		if s.folded != nil {
			opts.OnFolded = func(sc events.Scope, rev uint64) { s.folded(i, sc, rev) }
		}
		if s.applied != nil {
			opts.OnApplied = func(sc events.Scope, rev uint64) { s.applied(i, sc, rev) }
		}
		a, err := nodeagent.Open(opts)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("open agent %s: %w", name, err)
		}
		f.agents = append(f.agents, a)
	}
	return f, nil
}

// close stops every agent, a few at a time, and waits for them.
func (f *fleet) close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, a := range f.agents {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			a.Close()
		})
	}
	wg.Wait()
	f.agents = nil
}

// tracker records when each of n receivers first saw a revision at or
// past the armed target.
type tracker struct {
	mu     sync.Mutex
	n      int
	target uint64
	at     []time.Time
	count  int
	done   chan struct{}
}

func newTracker(n int) *tracker { return &tracker{n: n, at: make([]time.Time, n)} }

// arm starts waiting for target; the returned channel closes once every
// receiver saw it.
func (t *tracker) arm(target uint64) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.at)
	t.count, t.target, t.done = 0, target, make(chan struct{})
	return t.done
}

// seen records that receiver i holds revision rev.
func (t *tracker) seen(i int, rev uint64) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.target == 0 || rev < t.target || i >= t.n || !t.at[i].IsZero() {
		return
	}
	t.at[i] = now
	t.count++
	if t.count == t.n {
		close(t.done)
	}
}

// wait waits for the armed target and returns each receiver's time (zero
// for those that did not see it) and whether all did.
func (t *tracker) wait(done <-chan struct{}, timeout time.Duration) ([]time.Time, bool) {
	ok := true
	select {
	case <-done:
	case <-time.After(timeout):
		ok = false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]time.Time(nil), t.at...)
	t.target = 0
	return out, ok
}
