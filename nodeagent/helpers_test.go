package nodeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

var scopeWeb = events.MustParseScope("acme.prod.web")

// countingRuntime counts the calls that change replicas, so tests can show
// that an agent did (or did not) act.
type countingRuntime struct {
	deploy.Runtime
	starts, stops, removes, lists atomic.Int64
}

func (c *countingRuntime) Start(ctx context.Context, rs deploy.ReplicaSpec) (deploy.Replica, error) {
	c.starts.Add(1)
	return c.Runtime.Start(ctx, rs)
}

func (c *countingRuntime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c.stops.Add(1)
	return c.Runtime.Stop(ctx, id, timeout)
}

func (c *countingRuntime) Remove(ctx context.Context, id string) error {
	c.removes.Add(1)
	return c.Runtime.Remove(ctx, id)
}

func (c *countingRuntime) List(ctx context.Context) ([]deploy.Replica, error) {
	c.lists.Add(1)
	return c.Runtime.List(ctx)
}

func (c *countingRuntime) mutations() int64 {
	return c.starts.Load() + c.stops.Load() + c.removes.Load()
}

// harness is one test's world: a NATS server, a node name, a data dir.
type harness struct {
	t       testing.TB
	nats    *natstest.Server
	store   *store.Store
	node    string
	dataDir string
	ref     string
	log     *slog.Logger
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	srv := natstest.Start(t)
	dir := t.TempDir()
	h := &harness{t: t, nats: srv, store: srv.Store(t), node: testNodeName(), dataDir: dir,
		ref: filepath.Join(dir, "reference.json"), log: testLogger(t)}
	return h
}

func testNodeName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

// testLogger logs to the test output with -v, and discards otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// processRuntime returns a process runtime in dir whose replicas are all
// stopped and removed when the test ends.
func processRuntime(t testing.TB, node, dir string) *countingRuntime {
	t.Helper()
	rt, err := process.New(process.Config{Node: node, DataDir: dir, Logger: testLogger(t), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(t, rt) })
	return &countingRuntime{Runtime: rt}
}

// removeAll stops and removes every replica rt sees.
func removeAll(t testing.TB, rt deploy.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reps, err := rt.List(ctx)
	if err != nil {
		t.Logf("cleanup: list: %v", err)
		return
	}
	for _, r := range reps {
		_ = rt.Stop(ctx, r.ID, time.Second)
		if err := rt.Remove(ctx, r.ID); err != nil {
			t.Logf("cleanup: remove %s: %v", r.ID, err)
		}
	}
}

type optFn func(*Options)

// options are fast defaults for tests.
func (h *harness) options(rt deploy.Runtime, scopes ...events.Scope) Options {
	if len(scopes) == 0 {
		scopes = []events.Scope{scopeWeb}
	}
	url := h.nats.URL()
	return Options{
		Node:          Node{Name: h.node, Scopes: scopes, Advertise: "127.0.0.1"},
		ReferenceFile: h.ref,
		Runtime:       rt,
		RuntimeName:   "process",
		Connect: func(context.Context) (*nats.Conn, error) {
			return store.Connect(store.ConnectOptions{URL: url, Name: "agent " + h.node, Daemon: true})
		},
		AgentCheck: "127.0.0.1:0",
		Heartbeat:  200 * time.Millisecond,
		Resync:     time.Second,
		Deploy: deploy.Config{
			PollInterval: 50 * time.Millisecond,
			RunningGrace: 200 * time.Millisecond,
			StopTimeout:  3 * time.Second,
			RetryBackoff: time.Minute,
		},
		Logger: h.log,
	}
}

func (h *harness) open(opts Options, fns ...optFn) *Agent {
	h.t.Helper()
	for _, fn := range fns {
		fn(&opts)
	}
	a, err := Open(opts)
	if err != nil {
		h.t.Fatalf("open agent: %v", err)
	}
	h.t.Cleanup(func() { a.Close() })
	return a
}

// rawJS is JetStream on a connection of its own, for what hoist never does:
// raw publishes, deleting consumers.
func (h *harness) rawJS() jetstream.JetStream {
	h.t.Helper()
	js, err := jetstream.New(h.nats.Connect(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	return js
}

func (h *harness) append(p events.Payload) uint64 {
	h.t.Helper()
	return h.appendTo(scopeWeb, p)
}

func (h *harness) appendTo(sc events.Scope, p events.Payload) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := h.store.Append(ctx, &events.Event{Scope: sc, Actor: "test", Data: p}, store.AppendOptions{})
	if err != nil {
		h.t.Fatalf("append %s: %v", p.Kind(), err)
	}
	return e.Revision
}

// demoSpec runs the demo backend as a process with a health path.
func demoSpec(t testing.TB, replicas int, env map[string]string) events.Spec {
	return events.Spec{Command: []string{imagetest.DemoBinary(t)}, Port: 8080, Replicas: replicas, HealthPath: "/up", Env: env,
		Update: events.UpdateStrategy{HealthTimeout: events.Duration(20 * time.Second)}}
}

// scopeStatus returns the agent's view of sc.
func scopeStatus(a *Agent, sc events.Scope) events.ScopeStatus {
	for _, s := range a.Status().Scopes {
		if s.Scope == sc {
			return s
		}
	}
	return events.ScopeStatus{}
}

// waitConverged waits until the agent reports sc converged at rev with n
// healthy replicas.
func waitConverged(t testing.TB, a *Agent, sc events.Scope, rev uint64, n int) events.ScopeStatus {
	t.Helper()
	var st events.ScopeStatus
	natstest.Eventually(t, 60*time.Second, func() error {
		st = scopeStatus(a, sc)
		healthy := 0
		for _, r := range st.Replicas {
			if r.Healthy {
				healthy++
			}
		}
		if st.Phase != events.PhaseConverged || st.Applied != rev || healthy != n || len(st.Replicas) != n {
			return fmt.Errorf("%s: phase %s desired %d applied %d, %d/%d healthy, err %q (want rev %d, %d replicas)",
				sc, st.Phase, st.Desired, st.Applied, healthy, len(st.Replicas), st.Error, rev, n)
		}
		return nil
	})
	return st
}

// get fetches url and returns the status code and body.
func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// check asks the agent-check listener at addr with payload.
func check(t testing.TB, addr net.Addr, payload string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial agent check: %v", err)
	}
	defer conn.Close()
	if payload != "" {
		if _, err := conn.Write([]byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read agent check: %v", err)
	}
	return string(b)
}
