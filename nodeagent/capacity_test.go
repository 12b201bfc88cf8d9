package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// An agent never takes away serving capacity it cannot announce. NATS
// stops right after the agent got an env change: the new replica comes
// up, but its backend set cannot be acknowledged, so the old replica keeps
// serving and the status says why. When NATS is back, the rollout goes on
// and the new replica is announced before the old one stops.
func TestRolloutPausesWhileBackendsCannotBeAnnounced(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	var once sync.Once
	stopped := make(chan struct{})
	opts := h.options(rt)
	a := h.open(opts, func(o *Options) {
		o.OnFolded = func(sc events.Scope, rev uint64) {
			if rev == 2 {
				once.Do(func() { go func() { h.nats.Shutdown(); close(stopped) }() })
			}
		}
	})
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, map[string]string{"DEMO_MESSAGE": "old"})})
	st := waitConverged(t, a, scopeWeb, rev, 1)
	old := st.Replicas[0]

	h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "new"}})
	<-stopped
	natstest.Eventually(t, 30*time.Second, func() error {
		st = scopeStatus(a, scopeWeb)
		if !strings.Contains(st.Error, "rollout paused: cannot announce the backends") {
			return fmt.Errorf("no pause reported: phase %s, error %q, %d replicas", st.Phase, st.Error, len(st.Replicas))
		}
		return nil
	})
	if got := message(t, old.Backend); got != "old" {
		t.Fatalf("the old replica answers %q while its replacement is unannounced", got)
	}
	if reps, err := rt.List(context.Background()); err != nil || len(reps) != 2 {
		t.Fatalf("paused with %d replicas (%v), want the old and the new one", len(reps), err)
	}

	h.nats.Restart()
	h.reconnect(t)
	st = waitConverged(t, a, scopeWeb, 2, 1)
	if st.Replicas[0].ID == old.ID || message(t, st.Replicas[0].Backend) != "new" {
		t.Fatalf("after NATS came back: %+v", st.Replicas)
	}
	if st.Error != "" {
		t.Errorf("the pause is still reported: %q", st.Error)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		reps, err := h.store.BackendReports(context.Background(), scopeWeb)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.Node == h.node && len(r.Backends) == 1 && r.Backends[0] == st.Replicas[0].Backend {
				if i, ok := r.Slots[r.Backends[0]]; !ok || i != 0 {
					return fmt.Errorf("the report names no slot for %s: %+v", r.Backends[0], r.Slots)
				}
				return nil
			}
		}
		return fmt.Errorf("the new replica is not announced: %+v", reps)
	})
}

// Revisions that change nothing the replicas run (here stray messages,
// rejected and holding their revisions) do not cancel a rollout in
// flight: it finishes, starting the new replica once, and the agent then
// reports the latest revision.
func TestNoOpRevisionsDoNotInterruptARollout(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, map[string]string{"DEMO_MESSAGE": "old"})})
	waitConverged(t, a, scopeWeb, rev, 1)

	starts := rt.starts.Load()
	h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "new"}})
	natstest.Eventually(t, 10*time.Second, func() error {
		if rt.starts.Load() == starts {
			return fmt.Errorf("the rollout has not started a replica yet")
		}
		return nil
	})
	js := h.rawJS()
	for i := range 5 {
		if _, err := js.Publish(context.Background(), events.ScopeSubject(scopeWeb, events.KindScaled, "ci"), []byte(fmt.Sprintf("junk %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	st := waitConverged(t, a, scopeWeb, 7, 1)
	if got := message(t, st.Replicas[0].Backend); got != "new" {
		t.Fatalf("the replica answers %q", got)
	}
	if n := rt.starts.Load() - starts; n != 1 {
		t.Errorf("the env change started %d replicas, want 1: a stray message cancelled the rollout", n)
	}
}
