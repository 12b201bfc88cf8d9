package e2e

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/imagetest"
)

// host is the virtual host the scope's deploy claims on the balancer.
const host = "e2e.localhost"

// TestEndToEnd is issue 5's scenario on real processes: hoist server, two
// agents (3, then 5 replicas each) and the balancer, driven by the hoist
// CLI under continuous HTTP load through the balancer. It runs on Docker
// (when an engine answers) and on the process runtime.
func TestEndToEnd(t *testing.T) {
	needHoist(t)
	t.Run("docker", func(t *testing.T) {
		docker := imagetest.RequireDocker(t)
		image := imagetest.TestImage(t)
		c := startCluster(t, "docker", docker, "")
		runScenario(t, c, "--image", image)
	})
	t.Run("process", func(t *testing.T) {
		bin := imagetest.DemoBinary(t)
		c := startCluster(t, "process", nil, bin)
		runScenario(t, c, "--command", strconv.Quote(bin))
	})
}

// scenario runs the steps and keeps their figures.
type scenario struct {
	c    *cluster
	lg   *loadGen
	figs []figure
}

// figure is one step's line in docs/benchmarks.md.
type figure struct {
	step             string
	sent, failed     int64
	converge         time.Duration
	convergeMeasures string
}

func runScenario(t *testing.T, c *cluster, workload ...string) {
	s := &scenario{c: c}
	sc := c.scope
	began := time.Now()

	// 1. Deploy 3 replicas per node. Load starts once they serve.
	start := time.Now()
	c.hoist(t, 0, append([]string{"deploy", sc, "--replicas", "3", "--port", "8080", "--health-path", "/up",
		"--host", host, "--health-timeout", "8s"}, workload...)...)
	w := c.hoist(t, 0, "wait", sc, "--timeout", "90s")
	converged := time.Since(start)
	s.checkConverged(t)
	for _, n := range c.nodes {
		if !strings.Contains(w.stdout, n) {
			t.Fatalf("wait should name both nodes: %s\nstatus: %s", w, runHoist(t, c.natsURL, "status", "--json"))
		}
	}
	s.waitBackends(t, 6)
	s.lg = startLoad(t, c.balancer, host, "1. deploy 3 per node")
	s.checkScoreShares(t)
	s.endStep(t, converged, "publish → wait 0", true)

	// 2. Scale to 5: ten replicas answer.
	s.lg.setStep("2. scale to 5")
	converged = s.publishAndWait(t, "scale", sc, "5")
	s.waitBackends(t, 10)
	if who := count(s.lg.collect(t, 400, time.Minute), answer.who); len(who) != 10 {
		t.Errorf("after scaling to 5 per node, %d replicas answered, want 10: %v", len(who), who)
	}
	s.endStep(t, converged, "publish → wait 0", true)

	// 3. Rolling update: no request fails, then only revision 3 answers.
	s.lg.setStep("3. rolling update (env)")
	converged = s.publishAndWait(t, "env", sc, "VERSION=2")
	s.waitBackends(t, 10)
	as := s.lg.collect(t, 400, time.Minute)
	if revs := count(as, func(a answer) string { return a.Revision }); !maps.Equal(revs, map[string]int{"3": len(as)}) {
		t.Errorf("after the rolling update, answers by revision = %v, want all from revision 3", revs)
	}
	if who := count(as, answer.who); len(who) != 10 {
		t.Errorf("after the rolling update, %d replicas answered, want 10: %v", len(who), who)
	}
	s.endStep(t, converged, "publish → wait 0", true)

	// 4. A bad rollout fails its health check: wait exits 4 with the
	// reason, and the old replicas keep serving.
	s.lg.setStep("4. bad rollout (health fails)")
	start = time.Now()
	c.hoist(t, 0, "env", sc, "DEMO_FAIL_HEALTH=1")
	w = c.hoist(t, 4, "wait", sc, "--timeout", "90s")
	converged = time.Since(start)
	if !strings.Contains(w.stderr, "failed to roll out") || !strings.Contains(w.stderr, "revision 4") {
		t.Errorf("wait should say the rollout of revision 4 failed, and why: %s", w)
	}
	t.Logf("hoist wait on the bad rollout: %s", strings.TrimSpace(w.stderr))
	s.waitPhase(t, 4, "failed")
	as = s.lg.collect(t, 300, time.Minute)
	if revs := count(as, func(a answer) string { return a.Revision }); !maps.Equal(revs, map[string]int{"3": len(as)}) {
		t.Errorf("after the failed rollout, answers by revision = %v, want all from revision 3", revs)
	}
	s.endStep(t, converged, "publish → wait exits 4", true)

	// 5. Roll back to revision 3's spec.
	s.lg.setStep("5. rollback")
	converged = s.publishAndWait(t, "rollback", sc)
	as = s.lg.collect(t, 300, time.Minute)
	for rev := range count(as, func(a answer) string { return a.Revision }) {
		if rev != "3" && rev != "5" {
			t.Errorf("after the rollback, revision %s answered; want revision 3's spec (revision 3 or 5)", rev)
		}
	}
	s.endStep(t, converged, "publish → wait 0", true)

	// 5b. A sealed secret, then a rotation: both nodes granted, the value
	// reaches every replica, and neither rollout fails a request.
	s.lg.setStep("5b. secret set")
	start = time.Now()
	for _, n := range c.nodes {
		if g := c.hoist(t, 0, "secret", "grant", sc, n); !strings.Contains(g.stdout, "holds key v1") {
			t.Fatalf("secret grant %s should wait for the key: %s", n, g)
		}
	}
	const value = "sealed-e2e-message"
	if r := mustHoistInput(t, c.natsURL, value+"\n", 0, "secret", "set", sc, "DEMO_MESSAGE"); strings.Contains(r.stdout+r.stderr, value) {
		t.Errorf("secret set printed the value: %s", r)
	}
	c.hoist(t, 0, "wait", sc, "--timeout", "90s")
	converged = time.Since(start)
	s.checkConverged(t)
	s.waitBackends(t, 10)
	if msgs := count(s.lg.collect(t, 300, time.Minute), func(a answer) string { return a.Message }); !maps.Equal(msgs, map[string]int{value: 300}) {
		t.Errorf("after secret set, the replicas' messages = %v, want all %q", msgs, value)
	}
	for _, args := range [][]string{{"log", sc, "--json"}, {"state", sc, "--json"}, {"status", "--json"}, {"secret", "ls", sc}} {
		if out := c.hoist(t, 0, args...); strings.Contains(out.stdout+out.stderr, value) {
			t.Errorf("hoist %s prints the secret's value", strings.Join(args, " "))
		}
	}
	s.endStep(t, converged, "publish → wait 0", true)

	s.lg.setStep("5c. secret rotate")
	start = time.Now()
	if r := c.hoist(t, 0, "secret", "rotate", sc); !strings.Contains(r.stdout, "made key v2") {
		t.Errorf("secret rotate should report the new key: %s", r)
	}
	c.hoist(t, 0, "wait", sc, "--timeout", "90s")
	converged = time.Since(start)
	s.checkConverged(t)
	s.waitBackends(t, 10)
	if msgs := count(s.lg.collect(t, 300, time.Minute), func(a answer) string { return a.Message }); !maps.Equal(msgs, map[string]int{value: 300}) {
		t.Errorf("after the rotation, the replicas' messages = %v, want all %q", msgs, value)
	}
	s.endStep(t, converged, "publish → wait 0", true)

	// 6. Drain node-a: only node-b's replicas get new requests.
	s.lg.setStep("6. drain node-a")
	start = time.Now()
	c.hoist(t, 0, "drain", c.nodes[0])
	eventually(t, 30*time.Second, "the balancer drains node-a", func() error {
		p, err := c.table()
		if err != nil || p == nil {
			return fmt.Errorf("table: %v %v", p, err)
		}
		onA := 0
		for _, be := range p.Backends {
			if slices.Contains(be.Nodes, c.nodes[0]) {
				onA++
				if !be.Drained || be.Weight != 0 {
					return fmt.Errorf("backend %s of node-a: drained %v, weight %d", be.Addr, be.Drained, be.Weight)
				}
			}
		}
		if onA == 0 {
			return fmt.Errorf("no backend of node-a in the table: %+v", p.Backends)
		}
		return nil
	})
	converged = time.Since(start)
	as = s.lg.collect(t, 300, time.Minute)
	if nodes := count(as, func(a answer) string { return a.Node }); !maps.Equal(nodes, map[string]int{c.nodes[1]: len(as)}) {
		t.Errorf("after draining node-a, answers by node = %v, want all from %s", nodes, c.nodes[1])
	}
	s.endStep(t, converged, "publish → balancer weight 0", true)

	// 7. Remove: the balancer keeps the host of a removed scope with no
	// backends, so its clients get 503 with Retry-After (the scope may come
	// back), never an error page for an unknown host.
	s.lg.setStep("7. remove")
	converged = s.publishAndWait(t, "remove", sc)
	eventually(t, 30*time.Second, "the balancer answers 503 for the removed scope", func() error {
		if code, _, err := s.lg.get(t.Context()); code != "503" {
			return fmt.Errorf("got %s: %v", code, err)
		}
		return nil
	})
	s.lg.stop()
	if ra := s.lg.retryAfter(t); ra == "" {
		t.Error("503 for the removed scope has no Retry-After")
	}
	st := s.endStep(t, converged, "publish → wait 0", false)
	for code := range st.codes {
		if code != "200" && code != "503" {
			t.Errorf("while the scope was removed, the balancer answered %s; want only 200 (before) and 503 (after): %s", code, st)
		}
	}
	s.waitNoReplicas(t)

	t.Logf("scenario took %s\n%s", time.Since(began).Round(time.Second), s.markdown(c.runtime))
}

// publishAndWait runs one publish command and `hoist wait`, and returns
// the time from the publish to wait's exit 0.
func (s *scenario) publishAndWait(t *testing.T, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	s.c.hoist(t, 0, args...)
	s.c.hoist(t, 0, "wait", s.c.scope, "--timeout", "90s")
	took := time.Since(start)
	s.checkConverged(t)
	return took
}

// checkConverged checks wait's verdict against `hoist status`: both nodes
// have applied the scope's head and run every replica healthy.
func (s *scenario) checkConverged(t *testing.T) {
	t.Helper()
	head := s.c.hoist(t, 0, "state", s.c.scope, "--json").stdout
	st, err := decodeJSON[struct{ Revision uint64 }](head)
	if err != nil {
		t.Fatal(err)
	}
	views, err := s.c.status(t)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range views {
		if v.Scope.String() != s.c.scope {
			continue
		}
		n++
		if v.Applied < st.Revision || (v.Phase != "converged" && v.Phase != "removed") || v.Healthy != v.Total {
			t.Errorf("hoist wait said done, but %s reports applied %d of %d, %s, %d/%d healthy", v.Node, v.Applied, st.Revision, v.Phase, v.Healthy, v.Total)
		}
	}
	if n != 2 {
		t.Errorf("hoist wait said done, but %d nodes report %s: %+v", n, s.c.scope, views)
	}
}

// endStep closes the current step's load figures; with zeroFail, any
// failed request fails the test.
func (s *scenario) endStep(t *testing.T, converge time.Duration, measures string, zeroFail bool) *stepLoad {
	t.Helper()
	st := s.lg.setStep("between steps")
	t.Logf("%s (converged in %s)", st, converge.Round(time.Millisecond))
	if zeroFail && st.failed.Load() > 0 {
		t.Errorf("step %q: %d of %d requests failed, want none: %s", st.name, st.failed.Load(), st.sent.Load(), st)
	}
	s.figs = append(s.figs, figure{step: st.name, sent: st.sent.Load(), failed: st.failed.Load(), converge: converge, convergeMeasures: measures})
	return st
}

// waitBackends waits until the balancer routes the scope to n live
// backends.
func (s *scenario) waitBackends(t *testing.T, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("the balancer has %d backends", n), func() error {
		p, err := s.c.table()
		if err != nil || p == nil {
			return fmt.Errorf("table: %v %v", p, err)
		}
		live := 0
		for _, be := range p.Backends {
			if !be.Dead && be.Weight > 0 {
				live++
			}
		}
		if live != n || len(p.Backends) != n {
			return fmt.Errorf("%d backends, %d live: %+v", len(p.Backends), live, p.Backends)
		}
		return nil
	})
}

// waitPhase waits until every node reports revision rev of the scope in
// phase.
func (s *scenario) waitPhase(t *testing.T, rev uint64, phase string) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("both nodes report revision %d %s", rev, phase), func() error {
		views, err := s.c.status(t)
		if err != nil {
			return err
		}
		n := 0
		for _, v := range views {
			if v.Scope.String() == s.c.scope && v.Desired == rev && string(v.Phase) == phase {
				n++
			}
		}
		if n != 2 {
			return fmt.Errorf("%+v", views)
		}
		return nil
	})
}

// waitNoReplicas waits until the agents have stopped every replica of the
// removed scope.
func (s *scenario) waitNoReplicas(t *testing.T) {
	t.Helper()
	eventually(t, 60*time.Second, "every replica is gone", func() error {
		for i, n := range s.c.nodes {
			if s.c.docker != nil {
				if k, err := countContainers(s.c.docker, n); err != nil || k > 0 {
					return fmt.Errorf("%s: %d containers left (%v)", n, k, err)
				}
			}
			if pids := replicaPIDs(filepath.Join(s.c.agentDirs[i], "data", "process"), s.c.replicaBin); len(pids) > 0 {
				return fmt.Errorf("%s: replica processes %v left", n, pids)
			}
		}
		return nil
	})
}
