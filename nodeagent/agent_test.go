package nodeagent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

func TestAgentDeploysScalesAndReports(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))

	rev := h.append(&events.Deployed{Spec: demoSpec(t, 2, map[string]string{"DEMO_MESSAGE": "v1"})})
	st := waitConverged(t, a, scopeWeb, rev, 2)
	for _, r := range st.Replicas {
		code, body, err := get("http://" + r.Backend + "/")
		if err != nil || code != 200 || !strings.Contains(body, "v1") {
			t.Fatalf("replica %s: %d %q %v", r.Backend, code, body, err)
		}
	}

	// The status and the backends reach the store.
	ctx := context.Background()
	natstest.Eventually(t, 10*time.Second, func() error {
		sts, err := h.store.NodeStatuses(ctx, events.Scope{}, nil)
		if err != nil {
			return err
		}
		for _, ns := range sts {
			if ns.Node == h.node && len(ns.Scopes) == 1 && ns.Scopes[0].Applied == rev && ns.Scopes[0].Phase == events.PhaseConverged {
				return nil
			}
		}
		return fmt.Errorf("no converged status for %s in %+v", h.node, sts)
	})
	wantBackends := func(n int) {
		t.Helper()
		natstest.Eventually(t, 10*time.Second, func() error {
			reps, err := h.store.BackendReports(ctx, scopeWeb)
			if err != nil {
				return err
			}
			if len(reps) != 1 || len(reps[0].Backends) != n {
				return fmt.Errorf("backends reports: %+v", reps)
			}
			return nil
		})
	}
	wantBackends(2)

	// Agent check: node, scope and backend.
	addr := a.AgentCheckAddr()
	if got := check(t, addr, ""); got != "ready up 100%\n" {
		t.Errorf("node check: %q", got)
	}
	if got := check(t, addr, "acme.prod.web\n"); got != "ready up 100%\n" {
		t.Errorf("scope check: %q", got)
	}
	if got := check(t, addr, st.Replicas[0].Backend+"\n"); got != "ready up 100%\n" {
		t.Errorf("backend check: %q", got)
	}

	rev = h.append(&events.Scaled{Replicas: 3})
	waitConverged(t, a, scopeWeb, rev, 3)
	wantBackends(3)
	rev = h.append(&events.Scaled{Replicas: 1})
	waitConverged(t, a, scopeWeb, rev, 1)
	wantBackends(1)

	startsBefore := rt.starts.Load()
	rev = h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "v2"}})
	st = waitConverged(t, a, scopeWeb, rev, 1)
	if n := rt.starts.Load() - startsBefore; n != 1 {
		t.Errorf("env change started %d replicas, want 1", n)
	}
	if _, body, err := get("http://" + st.Replicas[0].Backend + "/"); err != nil || !strings.Contains(body, "v2") {
		t.Errorf("after env change: %q %v", body, err)
	}
}

func TestAgentDrainAndScoresInAgentCheck(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 2, nil)})
	st := waitConverged(t, a, scopeWeb, rev, 2)
	addr := a.AgentCheckAddr()

	backend := st.Replicas[1].Backend
	ctx := context.Background()
	if _, err := h.store.Append(ctx, &events.Event{Scope: scopeWeb, Data: &events.BackendScored{Backend: backend, Score: 40}}, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if got := check(t, addr, backend+"\n"); got != "ready up 40%\n" {
			return fmt.Errorf("scored backend: %q", got)
		}
		return nil
	})
	if got := check(t, addr, "acme.prod.web"); got != "ready up 70%\n" {
		t.Errorf("scope with one backend at 40: %q", got)
	}
	if got := check(t, addr, "127.0.0.1:1\n"); !strings.HasPrefix(got, "down #no replica at 127.0.0.1:1") {
		t.Errorf("unknown backend: %q", got)
	}
	if got := check(t, addr, "acme.prod.api\n"); !strings.HasPrefix(got, "down #scope acme.prod.api is not served") {
		t.Errorf("unknown scope: %q", got)
	}

	if err := a.Drain(ctx, "maintenance"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if got := check(t, addr, ""); got != "drain\n" {
			return fmt.Errorf("drained node: %q", got)
		}
		if !a.Status().Drained {
			return fmt.Errorf("status not drained")
		}
		return nil
	})
	if err := a.Undrain(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if got := check(t, addr, ""); got != "ready up 100%\n" {
			return fmt.Errorf("undrained node: %q", got)
		}
		return nil
	})
}

func TestAgentFailedHealthKeepsOldReplicas(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	good := h.append(&events.Deployed{Spec: demoSpec(t, 2, map[string]string{"DEMO_MESSAGE": "good"})})
	st := waitConverged(t, a, scopeWeb, good, 2)
	old := slices.Clone(st.Replicas)

	bad := demoSpec(t, 2, map[string]string{"DEMO_FAIL_HEALTH": "1"})
	bad.Update.HealthTimeout = events.Duration(time.Second)
	badRev := h.append(&events.Deployed{Spec: bad})
	natstest.Eventually(t, 30*time.Second, func() error {
		st = scopeStatus(a, scopeWeb)
		if st.Phase != events.PhaseFailed || st.Desired != badRev {
			return fmt.Errorf("phase %s desired %d err %q", st.Phase, st.Desired, st.Error)
		}
		return nil
	})
	if st.Applied != good || !strings.Contains(st.Error, "not healthy") {
		t.Errorf("failed status: applied %d (want %d), error %q", st.Applied, good, st.Error)
	}
	if len(st.Replicas) != 2 {
		t.Fatalf("replicas after the failed rollout: %+v", st.Replicas)
	}
	for i, r := range st.Replicas {
		if r.ID != old[i].ID || !r.Healthy {
			t.Errorf("replica %d changed: %+v, was %+v", i, r, old[i])
		}
		if code, body, err := get("http://" + r.Backend + "/"); err != nil || code != 200 || !strings.Contains(body, "good") {
			t.Errorf("old replica %s not serving: %d %q %v", r.Backend, code, body, err)
		}
	}
	if got := check(t, a.AgentCheckAddr(), "acme.prod.web\n"); got != "ready up 100%\n" {
		t.Errorf("scope check while old replicas serve: %q", got)
	}
	// The failure is kept in the reference file, so a restart does not
	// retry the broken spec at once.
	natstest.Eventually(t, 10*time.Second, func() error {
		ref, err := loadReference(h.ref, h.node)
		if err != nil || ref == nil || len(ref.Failures) != 1 || ref.Failures[0].Revision != badRev {
			return fmt.Errorf("reference file failures: %+v %v", ref, err)
		}
		return nil
	})

	// A rollback is a new revision: it is tried at once, and converges.
	rb := h.append(&events.RolledBack{To: good})
	waitConverged(t, a, scopeWeb, rb, 2)
}

func TestAgentRestoresAKilledReplica(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	opts := h.options(rt)
	opts.Resync = time.Hour // only the runtime's drift hint can bring it back
	a := h.open(opts)
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 2, nil)})
	st := waitConverged(t, a, scopeWeb, rev, 2)

	victim := st.Replicas[0]
	starts := rt.starts.Load()
	if err := rt.Runtime.Stop(context.Background(), victim.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		st = scopeStatus(a, scopeWeb)
		if rt.starts.Load() == starts {
			return fmt.Errorf("replica %d not restarted yet", victim.Index)
		}
		if len(st.Replicas) != 2 || st.Phase != events.PhaseConverged {
			return fmt.Errorf("phase %s, replicas %+v", st.Phase, st.Replicas)
		}
		for _, r := range st.Replicas {
			if r.Backend == victim.Backend {
				return fmt.Errorf("status still lists the stopped replica at %s", r.Backend)
			}
		}
		return nil
	})
	for _, r := range st.Replicas {
		if code, _, err := get("http://" + r.Backend + "/up"); err != nil || code != 200 {
			t.Errorf("replica %d at %s: %d %v", r.Index, r.Backend, code, err)
		}
	}
}

// An env change replaces replicas start-first: at no moment do fewer than
// the desired number answer their health check.
func TestRollingEnvChangeKeepsReplicasServing(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 2, map[string]string{"DEMO_MESSAGE": "one"})})
	waitConverged(t, a, scopeWeb, rev, 2)

	rev = h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "two"}})
	ctx := context.Background()
	list := func() ([]deploy.Replica, string) {
		reps, err := rt.Runtime.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range reps {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return reps, strings.Join(ids, ",")
	}
	minHealthy, samples := 99, 0
	for tries := 0; ; tries++ {
		reps, before := list()
		healthy := 0
		for _, r := range reps {
			if code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/up", r.HostPort)); err == nil && code == 200 {
				healthy++
			}
		}
		// A sample counts when no replica came or went while it was
		// probed: else an old replica stopped after its successor was
		// healthy would count as a gap the successor filled.
		if _, after := list(); after == before {
			minHealthy, samples = min(minHealthy, healthy), samples+1
		}
		st := scopeStatus(a, scopeWeb)
		if st.Phase == events.PhaseConverged && st.Applied == rev {
			break
		}
		if tries > 5000 {
			t.Fatalf("no convergence: %+v", st)
		}
	}
	if minHealthy < 2 {
		t.Errorf("only %d replicas answered at some point of the rollout (%d samples)", minHealthy, samples)
	}
	st := waitConverged(t, a, scopeWeb, rev, 2)
	for _, r := range st.Replicas {
		if _, body, err := get("http://" + r.Backend + "/"); err != nil || !strings.Contains(body, "two") {
			t.Errorf("replica %d after the rollout: %q %v", r.Index, body, err)
		}
	}
}
