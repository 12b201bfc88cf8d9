package nodeagent

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/docker"
	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// BenchmarkDeployToHealthy measures, per deploy, the time from appending an
// event that changes the spec (an env change, so the replica is replaced)
// to the agent announcing the new replica as a healthy backend. It runs the
// agent with production timings (health poll 250ms, the reconciler's
// defaults). Use -benchtime=25x for 25 deploys; p50 and p99 are reported.
//
//	go test ./nodeagent -run '^$' -bench DeployToHealthy -benchtime=25x
func BenchmarkDeployToHealthy(b *testing.B) {
	b.Run("process", func(b *testing.B) {
		benchDeploy(b, func(t testing.TB, h *harness) (deploy.Runtime, events.Spec) {
			return processRuntime(t, h.node, h.dataDir), demoSpec(t, 1, nil)
		})
	})
	b.Run("docker", func(b *testing.B) {
		benchDeploy(b, func(t testing.TB, h *harness) (deploy.Runtime, events.Spec) {
			engine := imagetest.RequireDocker(t)
			img := imagetest.TestImage(t)
			t.Cleanup(func() { imagetest.RemoveByLabel(t, engine, deploy.LabelNode+"="+h.node) })
			rt, err := docker.New(docker.Config{Node: h.node, Client: engine, HostIP: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			return rt, events.Spec{Image: img, Port: 8080, Replicas: 1, HealthPath: "/up"}
		})
	})
}

func benchDeploy(b *testing.B, setup func(testing.TB, *harness) (deploy.Runtime, events.Spec)) {
	var durations []time.Duration
	t := b
	{
		h := newHarness(t)
		rt, spec := setup(t, h)
		opts := h.options(rt)
		opts.Deploy = deploy.Config{}
		opts.Heartbeat, opts.Resync = DefaultHeartbeat, DefaultResync
		a := h.open(opts)
		rev := h.append(&events.Deployed{Spec: spec})
		waitConverged(t, a, scopeWeb, rev, 1)
		b.ResetTimer()
		for i := range b.N {
			before := backendSet(a)
			start := time.Now()
			rev = h.append(&events.EnvChanged{Set: map[string]string{"ROUND": strconv.Itoa(i)}})
			natstest.Eventually(t, time.Minute, func() error {
				for _, be := range backendSet(a) {
					if !slices.Contains(before, be) {
						return nil
					}
				}
				return fmt.Errorf("no new backend yet")
			})
			durations = append(durations, time.Since(start))
			waitConverged(t, a, scopeWeb, rev, 1)
		}
		b.StopTimer()
	}
	slices.Sort(durations)
	pct := func(p float64) time.Duration { return durations[min(len(durations)-1, int(p*float64(len(durations))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func backendSet(a *Agent) []string {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	if st := a.st.scopes[scopeWeb]; st != nil {
		return slices.Clone(st.backends)
	}
	return nil
}

// BenchmarkAgentRSS builds the hoist binary, runs 'hoist agent' with the
// process runtime, and reports its resident memory idle with one replica
// and with 50.
//
//	go test ./nodeagent -run '^$' -bench AgentRSS -benchtime=1x
func BenchmarkAgentRSS(b *testing.B) {
	t := b
	{
		bin := filepath.Join(t.TempDir(), "hoist")
		build := exec.Command("go", "build", "-o", bin, "github.com/hoist-dev/hoist/cmd/hoist")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build hoist: %v\n%s", err, out)
		}
		h := newHarness(t)
		nodeToml := filepath.Join(h.dataDir, "node.toml")
		if err := os.WriteFile(nodeToml, []byte(fmt.Sprintf("name = %q\nscopes = [\"acme.prod.web\"]\n", h.node)), 0o644); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(h.dataDir, "agent")
		rt, err := process.New(process.Config{Node: h.node, DataDir: filepath.Join(data, "process")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeAll(t, rt) })
		cmd := exec.Command(bin, "--nats-url", h.nats.URL(), "--log-level", "warn", "agent", "--node-config", nodeToml,
			"--runtime", "process", "--data", data, "--agent-check", "127.0.0.1:0")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		})

		spec := demoSpec(t, 1, nil)
		rev := h.append(&events.Deployed{Spec: spec})
		waitNodeStatus(t, h.store, h.node, scopeWeb, "1 replica", convergedAt(rev, 1))
		idle := peakRSS(t, cmd.Process.Pid, 3*time.Second)
		rev = h.append(&events.Scaled{Replicas: 50})
		waitNodeStatus(t, h.store, h.node, scopeWeb, "50 replicas", convergedAt(rev, 50))
		fifty := peakRSS(t, cmd.Process.Pid, 3*time.Second)
		b.ReportMetric(float64(idle)/1024, "idle-MiB")
		b.ReportMetric(float64(fifty)/1024, "50-replicas-MiB")
		b.ReportMetric(0, "ns/op")
	}
}

// peakRSS samples a process's VmRSS (KiB) for d and returns the highest.
func peakRSS(t testing.TB, pid int, d time.Duration) int {
	t.Helper()
	peak := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				peak = max(peak, kb)
			}
		}
		f.Close()
	}
	return peak
}
