//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// catchupResult is what the catch-up phase measured.
type catchupResult struct {
	agents, events, scopes, perAgent int
	perAgentEvents                   int           // events each agent had to catch up
	publish                          time.Duration // publishing the events while the agents were away
	converge                         summary       // per agent: start of the fleet → every scope at its head
	all                              time.Duration // until the last agent converged
	serverRSSBefore, serverRSSPeak   int64
	serverCPU, agentsCPU             time.Duration
	benchRSSPeak                     int64
	exact                            bool // every agent holds exactly the head revision of each scope
	problem                          string
}

// convergence tracks, per agent, the scopes that reached their target
// revision, and when the agent had them all.
type convergence struct {
	mu      sync.Mutex
	target  map[events.Scope]uint64
	reached []map[events.Scope]bool
	want    []int
	at      []time.Time
	left    int
	done    chan struct{}
}

func newConvergence(n int, scopes func(i int) []events.Scope, target map[events.Scope]uint64) *convergence {
	c := &convergence{target: target, reached: make([]map[events.Scope]bool, n), want: make([]int, n), at: make([]time.Time, n), left: n, done: make(chan struct{})}
	for i := range n {
		c.reached[i] = map[events.Scope]bool{}
		c.want[i] = len(scopes(i))
	}
	return c
}

func (c *convergence) applied(i int, sc events.Scope, rev uint64) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev < c.target[sc] || c.reached[i][sc] {
		return
	}
	c.reached[i][sc] = true
	if len(c.reached[i]) == c.want[i] {
		c.at[i] = now
		if c.left--; c.left == 0 {
			close(c.done)
		}
	}
}

func (c *convergence) wait(timeout time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (e *env) catchupPhase() error {
	o := e.opts
	res := &catchupResult{agents: o.catchAgent, events: o.catchEvent, scopes: o.catchScope, perAgent: min(o.perAgent, o.catchScope)}
	res.perAgentEvents = res.events / res.scopes * res.perAgent
	e.rep.catchup = res
	srv, stop, err := e.natsServer("catchup-server")
	if err != nil {
		return err
	}
	defer stop()
	st, nc, err := openStore(srv.url, "bench publisher")
	if err != nil {
		return err
	}
	defer nc.Close()
	log, closeLog, err := e.agentLogger("catchup")
	if err != nil {
		return err
	}
	defer closeLog()

	all := make([]events.Scope, res.scopes)
	for i := range all {
		all[i] = events.MustParseScope(fmt.Sprintf("bench.catchup.s%03d", i))
	}
	scopesOf := func(i int) []events.Scope {
		out := make([]events.Scope, res.perAgent)
		for k := range out {
			out[k] = all[(i*res.perAgent+k)%len(all)]
		}
		return out
	}
	ctx := context.Background()
	target := map[events.Scope]uint64{}
	for _, sc := range all {
		ev, err := st.Append(ctx, &events.Event{Scope: sc, Actor: "bench", Data: &events.Deployed{Spec: events.Spec{Image: "bench:1", Replicas: 0}}}, store.AppendOptions{})
		if err != nil {
			return err
		}
		target[sc] = ev.Revision
	}
	spec := agentSpec{url: srv.url, dir: filepath.Join(e.dir, "catchup-agents"), prefix: "cu", scopes: scopesOf, log: log}

	// The agents meet the scopes once, then go away.
	logf("  %d agents read the first revision of their %d scopes", res.agents, res.perAgent)
	conv := newConvergence(res.agents, scopesOf, target)
	spec.applied = conv.applied
	f, err := openFleet(spec, res.agents)
	if err != nil {
		return err
	}
	if !conv.wait(5 * time.Minute) {
		f.close()
		return fmt.Errorf("%d agents did not sync within 5m", res.agents)
	}
	f.close()

	logf("  publishing %d events to %d scopes while the agents are away", res.events, res.scopes)
	t0 := time.Now()
	if err := publishSpread(ctx, st, all, res.events, target); err != nil {
		return err
	}
	res.publish = time.Since(t0)
	res.serverRSSBefore = settledRSS(srv.pid(), 2*time.Second)

	logf("  starting %d agents at once", res.agents)
	conv = newConvergence(res.agents, scopesOf, target)
	spec.applied = conv.applied
	rs, bs := sampleRSS(srv.pid(), 100*time.Millisecond), sampleRSS(os.Getpid(), 100*time.Millisecond)
	scpu0, bcpu0 := cpuTime(srv.pid()), cpuTime(os.Getpid())
	stopProfile, err := e.startCPUProfile("catchup-cpu.pprof")
	if err != nil {
		return err
	}
	start := time.Now()
	f, err = openFleet(spec, res.agents)
	if err != nil {
		stopProfile()
		rs.stop()
		bs.stop()
		return err
	}
	defer f.close()
	ok := conv.wait(10 * time.Minute)
	res.all = time.Since(start)
	if file := stopProfile(); file != "" {
		e.rep.catchupProfile = &profileResult{what: "catch-up", cpuFile: file,
			cpuTop: pprofTop(e.root, "-top", "-nodecount", "25", file)}
	}
	res.serverCPU, res.agentsCPU = cpuTime(srv.pid())-scpu0, cpuTime(os.Getpid())-bcpu0
	res.serverRSSPeak, res.benchRSSPeak = rs.stop(), bs.stop()
	if !ok {
		res.problem = fmt.Sprintf("not every agent converged within 10m (%d left)", conv.left)
		return nil
	}
	var per []time.Duration
	for _, t := range conv.at {
		per = append(per, t.Sub(start))
	}
	res.converge = summarize(per)
	res.exact = true
	for i, a := range f.agents {
		st := a.Status()
		for _, ss := range st.Scopes {
			if ss.Desired != target[ss.Scope] {
				res.exact = false
				res.problem = fmt.Sprintf("agent %d holds %s at revision %d, the head is %d", i, ss.Scope, ss.Desired, target[ss.Scope])
			}
		}
	}
	logf("  converged: all in %s (p50 %s)", res.all.Round(time.Millisecond), ms(res.converge.p50))
	return nil
}

// publishSpread appends n events round-robin over scopes with 16
// publishers, each owning a share of the scopes, like several people
// deploying at once. target gets each scope's final revision.
func publishSpread(ctx context.Context, st *store.Store, scopes []events.Scope, n int, target map[events.Scope]uint64) error {
	const publishers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for p := range publishers {
		wg.Go(func() {
			for k := range n {
				sc := scopes[k%len(scopes)]
				if (k%len(scopes))%publishers != p {
					continue // each scope has one publisher, so appends never race
				}
				ev, err := st.Append(ctx, &events.Event{Scope: sc, Actor: "bench",
					Data: &events.EnvChanged{Set: map[string]string{"K": fmt.Sprint(k)}}}, store.AppendOptions{})
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					target[sc] = max(target[sc], ev.Revision)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
