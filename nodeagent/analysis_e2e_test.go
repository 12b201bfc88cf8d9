package nodeagent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// The whole path with real parts: an agent runs the demo backend as
// processes, a balancer proxies a steady load to them and publishes its
// statistics, and the agent's analysis reads them. A canary that fails 5%
// of its requests is aborted; a healthy one is stepped on and promoted.
func TestCanaryAnalysisEndToEnd(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	spec := func(msg, errRate string) events.Spec {
		s := demoSpec(t, 1, map[string]string{"DEMO_MESSAGE": msg, "DEMO_ERROR_RATE": errRate})
		s.Hosts = []string{"web.example.com"}
		return s
	}
	rev := h.append(&events.Deployed{Spec: spec("one", "0")})
	waitConverged(t, a, scopeWeb, rev, 1)

	bal := runBalancer(t, h, func(c *balancer.Config) { c.StatsInterval = 200 * time.Millisecond })
	startLoad(t, "http://"+bal.Addr("http").String(), "web.example.com", 4)

	auto := &events.Analysis{Steps: []int{50, 100}, Interval: events.Duration(time.Second), MaxErrorRate: 0.01,
		MaxP99: events.Duration(5 * time.Second), MinRequests: 100}
	last := func() (*events.Event, uint64) {
		hist, err := h.store.ScopeHistory(t.Context(), scopeWeb, 0)
		if err != nil {
			t.Fatal(err)
		}
		evs := hist.Events()
		return evs[len(evs)-1], hist.Head.Revision
	}

	// A canary that fails 5% of its requests: aborted.
	started := h.append(&events.CanaryStarted{Spec: spec("two", "5"), Share: 50, Replicas: 1, Auto: auto})
	natstest.Eventually(t, 60*time.Second, func() error {
		if e, _ := last(); e.Kind != events.KindCanaryAborted {
			return fmt.Errorf("last event %s at revision %d, want an abort (%+v)", e.Kind, e.Revision, scopeStatus(a, scopeWeb).Analysis)
		}
		return nil
	})
	e, rev := last()
	d := e.Data.(*events.CanaryAborted)
	t.Logf("revision %d: %s (%s)", rev, d.Reason, d.Figures)
	if rev != started+1 || !d.Automatic || !strings.HasPrefix(d.Reason, "canary 5xx ") || e.Actor != "hoist-agent@"+h.node {
		t.Fatalf("abort at revision %d by %s: %+v", rev, e.Actor, d)
	}
	if r := d.Figures.ErrorRate(); r < 0.03 || r > 0.07 || d.Figures.Balancers != 1 {
		t.Errorf("the abort's figures %s: want 5xx about 5%% from 1 balancer", d.Figures)
	}
	waitConverged(t, a, scopeWeb, rev, 1)

	// A healthy canary: 50%, then 100%, then promoted.
	started = h.append(&events.CanaryStarted{Spec: spec("three", "0"), Share: 50, Replicas: 1, Auto: auto})
	natstest.Eventually(t, 30*time.Second, func() error {
		if an := scopeStatus(a, scopeWeb).Analysis; an == nil || an.Owner != h.node || an.Canary != started {
			return fmt.Errorf("analysis status %+v, want run by %s", an, h.node)
		}
		return nil
	})
	natstest.Eventually(t, 60*time.Second, func() error {
		if e, _ := last(); e.Kind != events.KindCanaryPromoted {
			return fmt.Errorf("last event %s at revision %d, want a promotion (%+v)", e.Kind, e.Revision, scopeStatus(a, scopeWeb).Analysis)
		}
		return nil
	})
	hist, err := h.store.ScopeHistory(t.Context(), scopeWeb, 0)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range hist.Events()[started:] {
		switch d := e.Data.(type) {
		case *events.CanaryShifted:
			steps = append(steps, fmt.Sprintf("%d%% (%s)", d.Share, d.Reason))
		case *events.CanaryPromoted:
			steps = append(steps, "promoted ("+d.Reason+")")
		}
	}
	t.Logf("steps: %v", steps)
	if len(steps) != 2 || !strings.HasPrefix(steps[0], "100% (step 100%: canary 5xx 0.0% over ") || !strings.HasPrefix(steps[1], "promoted") {
		t.Errorf("steps %v, want 100%% then promoted", steps)
	}
	_, rev = last()
	waitConverged(t, a, scopeWeb, rev, 1)
	natstest.Eventually(t, 10*time.Second, func() error {
		if an := scopeStatus(a, scopeWeb).Analysis; an != nil {
			return fmt.Errorf("analysis status %+v after the promotion, want none", an)
		}
		return nil
	})
}
