package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/deploytest"
)

// fakeRuntime keeps replicas in memory. A replica's health comes from its
// spec's env: FAIL_INDEX=<i> makes replica i unhealthy, EXIT=1 makes every
// replica exit at once, NOCHECK=1 gives replicas no health check at all.
// OUTPUT=a|b is what a replica printed, for Tail.
var (
	web   = events.MustParseScope("acme.prod.web")
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

type fakeRuntime struct {
	mu    sync.Mutex
	reps  map[string]deploy.Replica
	envs  map[string]map[string]string
	next  int
	calls []string
}

func newFake() *fakeRuntime {
	return &fakeRuntime{reps: map[string]deploy.Replica{}, envs: map[string]map[string]string{}}
}

func (f *fakeRuntime) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeRuntime) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeRuntime) List(context.Context) ([]deploy.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []deploy.Replica
	for _, r := range f.reps {
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeRuntime) Start(_ context.Context, rs deploy.ReplicaSpec) (deploy.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := fmt.Sprintf("r%d", f.next)
	r := deploy.Replica{ID: id, Scope: rs.Scope, Index: rs.Index, Revision: rs.Revision, SpecHash: rs.SpecHash,
		State: deploy.StateRunning, HostPort: 10000 + f.next, StartedAt: time.Now()}
	f.reps[id], f.envs[id] = r, rs.Spec.Env
	f.log("start %d %s", rs.Index, id)
	return r, nil
}

func (f *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reps[id]
	if !ok {
		return deploy.ErrNotFound
	}
	r.State = deploy.StateExited
	f.reps[id] = r
	f.log("stop %s", id)
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.reps[id]; !ok {
		return deploy.ErrNotFound
	}
	delete(f.reps, id)
	return nil
}

func (f *fakeRuntime) Health(_ context.Context, id string) (deploy.Health, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reps[id]
	if !ok {
		return deploy.Health{}, deploy.ErrNotFound
	}
	env := f.envs[id]
	switch {
	case r.State != deploy.StateRunning:
		return deploy.Health{State: r.State}, nil
	case env["EXIT"] == "1":
		return deploy.Health{State: deploy.StateExited, Detail: "exit code 1"}, nil
	case env["NOCHECK"] == "1":
		return deploy.Health{State: deploy.StateRunning}, nil
	case env["FAIL_INDEX"] == fmt.Sprint(r.Index):
		return deploy.Health{State: deploy.StateRunning, Check: "unhealthy", Detail: "boom"}, nil
	}
	return deploy.Health{State: deploy.StateRunning, Check: "healthy"}, nil
}

// Tail is the spec's OUTPUT, one line per "|"; it is not a call the tests
// count.
func (f *fakeRuntime) Tail(_ context.Context, id string, n int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.reps[id]; !ok {
		return nil, deploy.ErrNotFound
	}
	out := f.envs[id]["OUTPUT"]
	if out == "" {
		return nil, nil
	}
	lines := strings.Split(out, "|")
	return lines[len(lines)-min(n, len(lines)):], nil
}

func (f *fakeRuntime) Watch(ctx context.Context) <-chan deploy.Change {
	ch := make(chan deploy.Change)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}

var _ deploy.Runtime = (*fakeRuntime)(nil)

// fakeClock is a settable clock for the failure backoff.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFakeReconciler(t *testing.T, rt deploy.Runtime, mod ...func(*deploy.Config)) *deploy.Reconciler {
	cfg := deploy.Config{Runtime: rt, Node: "n1", Logger: deploytest.Logger(t), PollInterval: 5 * time.Millisecond, RunningGrace: 20 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	rc, err := deploy.NewReconciler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func fakeSpec(replicas int, env ...string) *events.Spec {
	s := &events.Spec{Image: "demo:1", Replicas: replicas, Port: 80, Env: map[string]string{},
		Update: events.UpdateStrategy{HealthTimeout: events.Duration(100 * time.Millisecond)}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		s.Env[k] = v
	}
	return s
}

// A surge batch fails on its second replica: both new replicas go, even
// the one that was healthy, since its old replica still holds the index.
func TestReconcileTakesBackFailedBatch(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt)
	deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(3)})
	rt.take()

	bad := fakeSpec(3, "V=2", "FAIL_INDEX=1")
	bad.Update.Surge = 2
	res, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 2, Spec: bad})
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("err = %v, want ErrUnhealthy", err)
	}
	if want := "replica 1 of acme.prod.web (rev 2) not healthy within 100ms: docker health check: unhealthy: boom"; res.Reason != want {
		t.Errorf("reason %q, want %q", res.Reason, want)
	}
	if calls := rt.take(); !slices.Equal(calls, []string{"start 0 r4", "start 1 r5", "stop r4", "stop r5"}) {
		t.Errorf("calls %v", calls)
	}
	if got := deploytest.IDsByIndex(res.Replicas); len(res.Replicas) != 3 || got[0] != "r1" || got[1] != "r2" || got[2] != "r3" {
		t.Errorf("replicas after the failed batch: %v", res.Replicas)
	}
	if len(res.Backends) != 3 {
		t.Errorf("backends %v, want the 3 old ones", res.Backends)
	}
}

func TestReconcileFailureBackoff(t *testing.T) {
	rt := newFake()
	clock := &fakeClock{now: epoch}
	rc := newFakeReconciler(t, rt, func(c *deploy.Config) { c.Now = clock.Now; c.RetryBackoff = time.Minute })
	bad := deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(1, "EXIT=1")}

	_, err := rc.Reconcile(t.Context(), bad)
	if !errors.Is(err, deploy.ErrExited) || !strings.Contains(err.Error(), "stopped before it was healthy: exited: exit code 1") {
		t.Fatalf("err = %v, want ErrExited with the exit code", err)
	}
	if fs := rc.Failures(); len(fs) != 1 || fs[0].Attempts != 1 || !fs[0].RetryAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("failures %+v", fs)
	}
	rt.take()

	// Within the backoff: held, no calls.
	clock.Add(59 * time.Second)
	res, err := rc.Reconcile(t.Context(), bad)
	if err != nil || res.Phase != events.PhaseFailed || !res.RetryAt.Equal(epoch.Add(time.Minute)) {
		t.Errorf("held: err %v, phase %s, retry at %v", err, res.Phase, res.RetryAt)
	}
	if calls := rt.take(); len(calls) != 0 {
		t.Errorf("held reconcile made calls %v", calls)
	}

	// Past it: retried, and the next wait doubles.
	clock.Add(2 * time.Second)
	if _, err := rc.Reconcile(t.Context(), bad); err == nil {
		t.Fatal("retry succeeded unexpectedly")
	}
	if calls := rt.take(); deploytest.CountPrefix(calls, "start") != 1 {
		t.Errorf("retry calls %v, want one start", calls)
	}
	if fs := rc.Failures(); fs[0].Attempts != 2 || !fs[0].RetryAt.Equal(clock.Now().Add(2*time.Minute)) {
		t.Errorf("after retry: %+v", fs)
	}

	// A new revision is tried at once, and success clears the failure.
	good := deploy.Desired{Scope: web, Revision: 2, Spec: fakeSpec(1)}
	if res := deploytest.MustReconcile(t, rc, good); res.Phase != events.PhaseConverged {
		t.Errorf("new revision: phase %s", res.Phase)
	}
	if fs := rc.Failures(); len(fs) != 0 {
		t.Errorf("failures after success: %+v", fs)
	}

	// Persisted failures hold back after a restart.
	restored := newFakeReconciler(t, rt, func(c *deploy.Config) { c.Now = clock.Now })
	restored.RestoreFailures([]deploy.Failure{{Scope: web, Revision: 3, SpecHash: deploy.SpecHash(bad.Spec), Reason: "earlier", RetryAt: clock.Now().Add(time.Hour)}})
	rt.take()
	res, err = restored.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 3, Spec: bad.Spec})
	if err != nil || res.Reason != "earlier" || len(rt.take()) != 0 {
		t.Errorf("restored failure: err %v, reason %q", err, res.Reason)
	}
}

// The new replica is announced before the old one is stopped, and the old
// one is withdrawn before it is stopped.
func TestReconcileAnnouncesBeforeStopping(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt, func(c *deploy.Config) {
		c.OnBackends = func(scope events.Scope, b deploy.Backends) {
			rt.mu.Lock()
			defer rt.mu.Unlock()
			rt.log("announce %d", len(b.Addrs))
		}
	})
	deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(1)})
	rt.take()
	res := deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 2, Spec: fakeSpec(1, "V=2")})
	want := []string{"start 0 r2", "announce 2", "announce 1", "stop r1"}
	if calls := rt.take(); !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	if res.Phase != events.PhaseConverged || len(res.Backends) != 1 || res.Replicas[0].ID != "r2" {
		t.Errorf("result %+v", res)
	}
}

func TestReconcileRunningGrace(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt)
	res := deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(2, "NOCHECK=1")})
	if res.Phase != events.PhaseConverged || len(res.Backends) != 2 {
		t.Errorf("phase %s, backends %v", res.Phase, res.Backends)
	}
}

// Nothing known about what should run: nothing is touched, not even
// listed.
func TestReconcileNoDesiredState(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt)
	deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(2)})
	rt.take()
	res, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 2})
	if !errors.Is(err, deploy.ErrNoDesiredState) || res.Phase != events.PhaseFailed {
		t.Errorf("err %v, phase %s", err, res.Phase)
	}
	if reps, _ := rt.List(t.Context()); len(reps) != 2 || len(rt.take()) != 0 {
		t.Errorf("replicas were touched: %v", reps)
	}
	bad := fakeSpec(2)
	bad.HealthPath = "no-slash"
	if _, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 3, Spec: bad}); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("invalid spec: err %v, want events.ErrInvalid", err)
	}
}

// A rollout stopped before it finished (a newer revision arrived, the agent
// is stopping) is not a failure: nothing is held back, and it says so.
func TestReconcileStoppedIsNoFailure(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt)
	spec := fakeSpec(1, "FAIL_INDEX=0")
	spec.Update.HealthTimeout = events.Duration(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res, err := rc.Reconcile(ctx, deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	if !errors.Is(err, context.DeadlineExceeded) || res.Phase != events.PhaseProgressing {
		t.Fatalf("err %v, phase %s", err, res.Phase)
	}
	if fs := rc.Failures(); len(fs) != 0 {
		t.Fatalf("a stopped rollout was recorded as a failure: %+v", fs)
	}
}
