package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// agentProc is 'hoist agent' running in-process.
type agentProc struct {
	cancel context.CancelFunc
	done   chan error
	log    *natstest.SyncBuffer
}

func startAgentCmd(t *testing.T, args ...string) *agentProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &agentProc{cancel: cancel, done: make(chan error, 1), log: &natstest.SyncBuffer{}}
	app := newApp(&natstest.SyncBuffer{}, p.log)
	argv := reorderArgs(app, append([]string{"hoist", "agent"}, args...))
	go func() { p.done <- app.RunContext(ctx, argv) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", p.log.String())
		}
	})
	natstest.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("agent exited: %v\n%s", err, p.log.String())
		default:
		}
		if !strings.Contains(p.log.String(), "agent running") {
			return fmt.Errorf("agent not running yet")
		}
		return nil
	})
	return p
}

func agtNode() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

func agtWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAgentAcceptance is issue 3's script, as a new user would run it: an
// agent from node.toml, deploys waited on with 'hoist wait', a failing
// rollout that exits 4 while the old replicas serve, a rollback, drain by
// signal and a reload that adds a scope. It runs with both runtimes.
func TestAgentAcceptance(t *testing.T) {
	for _, runtime := range []string{"process", "docker"} {
		t.Run(runtime, func(t *testing.T) { agentAcceptance(t, runtime) })
	}
}

func agentAcceptance(t *testing.T, runtime string) {
	node := agtNode()
	target := []string{"--command", imagetest.DemoBinary(t)}
	if runtime == "docker" {
		engine := imagetest.RequireDocker(t)
		target = []string{"--image", imagetest.TestImage(t)}
		// Registered before the agent starts, so it runs after the agent
		// stopped: every container of the test node, by label.
		t.Cleanup(func() { imagetest.RemoveByLabel(t, engine, deploy.LabelNode+"="+node) })
	}
	srv := natstest.Start(t)
	t.Setenv("HOIST_NATS_URL", srv.URL())
	dir := t.TempDir()
	nodeToml := filepath.Join(dir, "node.toml")
	agtWriteFile(t, nodeToml, fmt.Sprintf("version = \"1\"\nname = %q\nclient = \"acme\"\nenvironment = \"prod\"\nsolution = \"web\"\nadvertise = \"127.0.0.1\"\n", node))
	agtWriteFile(t, filepath.Join(dir, "config.toml"), "reference_file_path = \"state/reference.json\"\n")
	if runtime == "process" {
		t.Cleanup(func() {
			p, err := process.New(process.Config{Node: node, DataDir: filepath.Join(dir, "data", "process")})
			if err != nil {
				t.Error(err)
				return
			}
			ctx := context.Background()
			reps, _ := p.List(ctx)
			for _, r := range reps {
				_ = p.Stop(ctx, r.ID, time.Second)
				_ = p.Remove(ctx, r.ID)
			}
		})
	}
	startAgentCmd(t, "--node-config", nodeToml, "--runtime", runtime, "--data", filepath.Join(dir, "data"),
		"--agent-check", "", "--heartbeat", "200ms", "--resync", "1s")
	const scope = "acme.prod.web"

	deployArgs := append([]string{"deploy", scope}, target...)
	mustRun(t, 0, hoist(append(deployArgs, "--replicas", "3", "--port", "8080", "--health-path", "/up", "--env", "DEMO_MESSAGE=one")...))
	r := mustRun(t, 0, hoist("wait", scope, "--timeout", "1m"))
	if !strings.Contains(r.stdout, "revision 1 is converged and healthy on "+node) {
		t.Errorf("wait: %s", r)
	}
	agtExists(t, filepath.Join(dir, "state", "reference.json"))
	agtHealthy(t, scope, 3)

	mustRun(t, 0, hoist("scale", scope, "5"))
	mustRun(t, 0, hoist("wait", scope, "--timeout", "1m"))
	agtHealthy(t, scope, 5)
	mustRun(t, 0, hoist("scale", scope, "2"))
	mustRun(t, 0, hoist("wait", scope, "--timeout", "1m"))
	mustRun(t, 0, hoist("env", scope, "DEMO_MESSAGE=two"))
	mustRun(t, 0, hoist("wait", scope, "--timeout", "1m"))
	good := agtHealthy(t, scope, 2)

	mustRun(t, 0, hoist(append(deployArgs, "--env", "DEMO_FAIL_HEALTH=1", "--health-timeout", "2s")...))
	r = mustRun(t, 4, hoist("wait", scope, "--timeout", "1m"))
	if !strings.Contains(r.stderr, "failed to roll out acme.prod.web revision 5") || !strings.Contains(r.stderr, "not healthy") {
		t.Errorf("failing rollout: %s", r)
	}
	after := agtHealthy(t, scope, 2)
	for i, rep := range after.Replicas {
		if rep.ID != good.Replicas[i].ID {
			t.Errorf("old replica %d replaced by the failed rollout", i)
		}
		if code := agtHTTPGet(t, rep.Backend); code != 200 {
			t.Errorf("old replica %s not serving: %d", rep.Backend, code)
		}
	}

	mustRun(t, 0, hoist("rollback", scope))
	mustRun(t, 0, hoist("wait", scope, "--timeout", "1m"))

	// SIGUSR2 drains, SIGUSR1 undrains: events, seen in the status.
	agtSignal(t, syscall.SIGUSR2)
	agtWaitStatus(t, func(v projector.NodeView) bool { return v.Drained })
	agtSignal(t, syscall.SIGUSR1)
	agtWaitStatus(t, func(v projector.NodeView) bool { return !v.Drained })

	// SIGHUP reloads node.toml: a second scope.
	mustRun(t, 0, hoist("deploy", "acme.prod.api", target[0], target[1], "--port", "8080", "--health-path", "/up"))
	agtWriteFile(t, nodeToml, fmt.Sprintf("name = %q\nscopes = [\"acme.prod.web\", \"acme.prod.api\"]\n", node))
	agtSignal(t, syscall.SIGHUP)
	mustRun(t, 0, hoist("wait", "acme.prod.api", "--timeout", "1m"))
}

// agtSignal sends sig to this process, where the in-process agent has
// taken it.
func agtSignal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func agtWaitStatus(t *testing.T, ok func(projector.NodeView) bool) {
	t.Helper()
	natstest.Eventually(t, 30*time.Second, func() error {
		r := hoist("status", "--json")
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		views := decodeJSON[[]projector.NodeView](t, r.stdout)
		for _, v := range views {
			if v.Alive && ok(v) {
				return nil
			}
		}
		return fmt.Errorf("status: %s", r.stdout)
	})
}

// agtHealthy checks the one live node's view of scope.
func agtHealthy(t *testing.T, scope string, n int) projector.NodeView {
	t.Helper()
	views := decodeJSON[[]projector.NodeView](t, mustRun(t, 0, hoist("status", scope, "--json")).stdout)
	if len(views) != 1 || views[0].Healthy != n || views[0].Total != n {
		t.Fatalf("want %d healthy replicas, status: %+v", n, views)
	}
	return views[0]
}

func agtHTTPGet(t *testing.T, backend string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + backend + "/up")
	if err != nil {
		t.Logf("GET %s: %v", backend, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func agtExists(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestAgentRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "node.toml")
	agtWriteFile(t, bad, "name = \"n1\"\nscopes = [\"acme.Prod.web\"]\n")
	r := mustRun(t, 2, hoist("agent", "--node-config", bad))
	if !strings.Contains(r.stderr, bad+":2: scopes is invalid: entry 1: invalid scope \"acme.Prod.web\": environment \"Prod\" must be lowercase") {
		t.Errorf("bad node.toml: %s", r)
	}
	r = mustRun(t, 2, hoist("agent", "--node-config", filepath.Join(dir, "missing.toml")))
	if !strings.Contains(r.stderr, "missing.toml does not exist") {
		t.Errorf("missing node.toml: %s", r)
	}
	agtWriteFile(t, bad, "name = \"n1\"\nscopes = [\"acme.prod.web\"]\n")
	cfg := filepath.Join(dir, "config.toml")
	agtWriteFile(t, cfg, "reference_file_path = \"ref.json\"\nrefrence = 1\n")
	r = mustRun(t, 2, hoist("agent", "--node-config", bad))
	if !strings.Contains(r.stderr, cfg+`:2: "refrence" is not a known key`) {
		t.Errorf("bad config.toml: %s", r)
	}
	agtWriteFile(t, cfg, "")
	r = mustRun(t, 2, hoist("agent", "--node-config", bad, "--runtime", "podman", "--data", dir))
	if !strings.Contains(r.stderr, `--runtime "podman": want docker or process`) {
		t.Errorf("bad runtime: %s", r)
	}
	r = mustRun(t, 2, hoist("agent", "--node-config", bad, "--advertise", "1.2.3.4:80"))
	if !strings.Contains(r.stderr, "--advertise") {
		t.Errorf("bad advertise: %s", r)
	}
}
