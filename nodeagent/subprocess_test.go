package nodeagent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/docker"
	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// The test binary doubles as a standalone agent process, so a test can
// SIGKILL an agent mid-rollout and start another one on the same files.
const agentEnv = "NODEAGENT_TEST_AGENT"

type subprocessConfig struct {
	Node    string   `json:"node"`
	Scopes  []string `json:"scopes"`
	Ref     string   `json:"ref"`
	Data    string   `json:"data"`
	URL     string   `json:"url"`
	Runtime string   `json:"runtime"`
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(agentEnv); cfg != "" {
		os.Exit(runSubprocessAgent(cfg))
	}
	os.Exit(m.Run())
}

// runSubprocessAgent runs an agent until SIGTERM, printing "ready" once it
// is open.
func runSubprocessAgent(raw string) int {
	var cfg subprocessConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "agent config:", err)
		return 2
	}
	var scopes []events.Scope
	for _, s := range cfg.Scopes {
		scopes = append(scopes, events.MustParseScope(s))
	}
	var rt deploy.Runtime
	var err error
	switch cfg.Runtime {
	case "docker":
		rt, err = docker.New(docker.Config{Node: cfg.Node, HostIP: "127.0.0.1"})
	default:
		rt, err = process.New(process.Config{Node: cfg.Node, DataDir: cfg.Data, PollInterval: 100 * time.Millisecond})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtime:", err)
		return 1
	}
	a, err := Open(Options{
		Node:          Node{Name: cfg.Node, Scopes: scopes, Advertise: "127.0.0.1"},
		ReferenceFile: cfg.Ref,
		Runtime:       rt,
		RuntimeName:   cfg.Runtime,
		Connect: func(context.Context) (*nats.Conn, error) {
			return store.Connect(store.ConnectOptions{URL: cfg.URL, Name: "agent " + cfg.Node, Daemon: true})
		},
		Heartbeat: 200 * time.Millisecond,
		Resync:    time.Second,
		Deploy:    deploy.Config{PollInterval: 50 * time.Millisecond, RunningGrace: 200 * time.Millisecond, StopTimeout: 3 * time.Second},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open agent:", err)
		return 1
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	a.Close()
	return 0
}

type agentProc struct {
	cmd  *exec.Cmd
	done chan error
}

// startSubprocessAgent runs the test binary as an agent process.
func startSubprocessAgent(t *testing.T, cfg subprocessConfig) *agentProc {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), agentEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case <-ready:
	case err := <-p.done:
		t.Fatalf("agent process exited before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent process not ready within 30s")
	}
	return p
}

// kill SIGKILLs the agent (its replicas keep running) and reaps it.
func (p *agentProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// waitNodeStatus polls the store until the node's latest report of scope
// satisfies ok.
func waitNodeStatus(t testing.TB, st *store.Store, node string, sc events.Scope, what string, ok func(events.ScopeStatus) bool) events.ScopeStatus {
	t.Helper()
	var got events.ScopeStatus
	natstest.Eventually(t, 60*time.Second, func() error {
		sts, err := st.NodeStatuses(context.Background(), events.Scope{}, nil)
		if err != nil {
			return err
		}
		for _, ns := range sts {
			if ns.Node != node {
				continue
			}
			for _, s := range ns.Scopes {
				if s.Scope == sc {
					got = s
					if ok(s) {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("%s: last report %+v", what, got)
	})
	return got
}

func convergedAt(rev uint64, n int) func(events.ScopeStatus) bool {
	return func(s events.ScopeStatus) bool {
		if s.Phase != events.PhaseConverged || s.Applied != rev || len(s.Replicas) != n {
			return false
		}
		for _, r := range s.Replicas {
			if !r.Healthy {
				return false
			}
		}
		return true
	}
}

// An agent SIGKILLed in the middle of a rollout, restarted after a new
// deploy, converges with no orphan and no duplicate replica.
func TestAgentKilledMidRolloutConverges(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	cfg := subprocessConfig{Node: h.node, Scopes: []string{scopeWeb.String()}, Ref: h.ref, Data: h.dataDir, URL: h.nats.URL(), Runtime: "process"}
	specs := map[string]events.Spec{
		"good": demoSpec(t, 2, map[string]string{"DEMO_MESSAGE": "v1"}),
		"slow": demoSpec(t, 2, map[string]string{"DEMO_FAIL_HEALTH": "1"}),
		"next": demoSpec(t, 2, map[string]string{"DEMO_MESSAGE": "v3"}),
	}
	runMidRolloutKill(t, h, rt, cfg, specs)
}

func runMidRolloutKill(t *testing.T, h *harness, rt deploy.Runtime, cfg subprocessConfig, specs map[string]events.Spec) {
	t.Helper()
	agent := startSubprocessAgent(t, cfg)
	rev := h.append(&events.Deployed{Spec: specs["good"]})
	waitNodeStatus(t, h.store, h.node, scopeWeb, "first deploy", convergedAt(rev, 2))

	slow := specs["slow"]
	slow.Update.HealthTimeout = events.Duration(5 * time.Minute)
	slowRev := h.append(&events.Deployed{Spec: slow})
	ctx := context.Background()
	natstest.Eventually(t, 60*time.Second, func() error {
		reps, err := rt.List(ctx)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.Revision == slowRev && r.State == deploy.StateRunning {
				return nil
			}
		}
		return fmt.Errorf("no replica of revision %d started yet: %v", slowRev, reps)
	})
	agent.kill()

	next := specs["next"]
	nextRev := h.append(&events.Deployed{Spec: next})
	startSubprocessAgent(t, cfg)
	waitNodeStatus(t, h.store, h.node, scopeWeb, "after the restart", convergedAt(nextRev, 2))

	reps, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.SpecHash(&next)
	seen := map[int]bool{}
	for _, r := range reps {
		if r.SpecHash != want || r.State != deploy.StateRunning || seen[r.Index] {
			t.Errorf("orphan or duplicate replica: %+v", r)
		}
		seen[r.Index] = true
	}
	if len(reps) != 2 || !seen[0] || !seen[1] {
		t.Fatalf("want replicas 0 and 1 of revision %d, got %+v", nextRev, reps)
	}
	for _, r := range reps {
		if code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", r.HostPort)); err != nil || code != 200 || !strings.Contains(body, "v3") {
			t.Errorf("replica %d: %d %q %v", r.Index, code, body, err)
		}
	}
}
