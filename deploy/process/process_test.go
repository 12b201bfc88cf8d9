package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/deploytest"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// web is the scope the tests deploy.
var web = events.MustParseScope("acme.prod.web")

type processFixture struct {
	rt  *Runtime
	rec *deploytest.Recorder
	rc  *deploy.Reconciler
	dir string
}

func newProcessFixture(t *testing.T, node, dir string) *processFixture {
	t.Helper()
	rt, err := New(Config{Node: node, DataDir: dir, Logger: deploytest.Logger(t), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := deploytest.NewRecorder(t, rt, "/up")
	rc, err := deploy.NewReconciler(deploy.Config{
		Runtime: rec, Node: node, Advertise: "127.0.0.1", Logger: deploytest.Logger(t),
		PollInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second, RunningGrace: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &processFixture{rt: rt, rec: rec, rc: rc, dir: dir}
}

// stopAll is the test's cleanup: every replica of the runtime goes.
func stopAll(t testing.TB, rt deploy.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reps, err := rt.List(ctx)
	if err != nil {
		t.Errorf("cleanup: list: %v", err)
		return
	}
	for _, r := range reps {
		if err := rt.Stop(ctx, r.ID, 2*time.Second); err != nil && !errors.Is(err, deploy.ErrNotFound) {
			t.Errorf("cleanup: stop %s: %v", r.ID, err)
		}
		if err := rt.Remove(ctx, r.ID); err != nil && !errors.Is(err, deploy.ErrNotFound) {
			t.Errorf("cleanup: remove %s: %v", r.ID, err)
		}
	}
}

func demoSpec(bin string, replicas int, msg string) *events.Spec {
	return &events.Spec{
		Command: []string{bin}, Replicas: replicas, Port: 8080, HealthPath: "/up",
		Env:    map[string]string{"DEMO_MESSAGE": msg},
		Update: events.UpdateStrategy{HealthTimeout: events.Duration(10 * time.Second)},
	}
}

func TestReconcileProcess(t *testing.T) {
	bin := imagetest.DemoBinary(t)
	node := deploytest.Node(t)
	f := newProcessFixture(t, node, t.TempDir())
	t.Cleanup(func() { stopAll(t, f.rt) })
	rc, rec := f.rc, f.rec

	// Deploy 3.
	spec := demoSpec(bin, 3, "v1")
	res := deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	if res.Phase != events.PhaseConverged || len(res.Backends) != 3 {
		t.Fatalf("deploy: phase %s, backends %v", res.Phase, res.Backends)
	}
	if got := deploytest.Messages(t, res.Backends); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("deploy: messages %v", got)
	}
	id := deploytest.Identity(t, res.Backends[0])
	if id.Scope != "acme.prod.web" || id.Revision != "1" || !strings.HasPrefix(id.Replica, "acme.prod.web#") {
		t.Errorf("replica identity = %+v", id)
	}
	before := deploytest.IDsByIndex(res.Replicas)
	rec.Take(0)

	// Scale to 5: only indexes 3 and 4 start.
	spec = spec.Clone()
	spec.Replicas = 5
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 2, Spec: spec})
	if res.Phase != events.PhaseConverged || len(res.Backends) != 5 {
		t.Fatalf("scale 5: phase %s, backends %v", res.Phase, res.Backends)
	}
	if calls := rec.Take(0); !slices.Equal(calls, []string{"start 3", "start 4"}) {
		t.Errorf("scale 5: calls %v, want start 3, start 4", calls)
	}
	after := deploytest.IDsByIndex(res.Replicas)
	for i := range 3 {
		if after[i] != before[i] {
			t.Errorf("scale 5 replaced replica %d: %s → %s", i, before[i], after[i])
		}
	}

	// Scale to 2: the highest indexes stop, first to last.
	spec = spec.Clone()
	spec.Replicas = 2
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 3, Spec: spec})
	if res.Phase != events.PhaseConverged || len(res.Backends) != 2 {
		t.Fatalf("scale 2: phase %s, backends %v", res.Phase, res.Backends)
	}
	want := []string{"stop " + after[4], "stop " + after[3], "stop " + after[2]}
	if calls := rec.Take(2); !slices.Equal(calls, want) {
		t.Errorf("scale 2: calls %v, want %v", calls, want)
	}
	if got := deploytest.IDsByIndex(res.Replicas); got[0] != before[0] || got[1] != before[1] {
		t.Errorf("scale 2 touched the kept replicas: %v, was %v", got, before)
	}

	// Env change rolls every replica, start-first; the recorder checks at
	// every stop that two others serve.
	spec = spec.Clone()
	spec.Env = map[string]string{"DEMO_MESSAGE": "v2"}
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 4, Spec: spec})
	if res.Phase != events.PhaseConverged || len(res.Backends) != 2 {
		t.Fatalf("env change: phase %s, backends %v", res.Phase, res.Backends)
	}
	if got := deploytest.Messages(t, res.Backends); !slices.Equal(got, []string{"v2"}) {
		t.Errorf("env change: messages %v, want v2 only", got)
	}
	calls := rec.Take(2)
	wantCalls := []string{"start 0", "stop " + before[0], "start 1", "stop " + before[1]}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("env change: calls %v, want %v", calls, wantCalls)
	}
	serving := res.Backends

	// A spec whose health check fails: the rollout stops, the new replica
	// goes, the old ones keep serving.
	bad := spec.Clone()
	bad.Env = map[string]string{"DEMO_MESSAGE": "v3", "DEMO_FAIL_HEALTH": "1"}
	bad.Update.HealthTimeout = events.Duration(time.Second)
	res, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 5, Spec: bad})
	var rerr *deploy.RolloutError
	if !errors.As(err, &rerr) || !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("failing health: err = %v, want a RolloutError for ErrUnhealthy", err)
	}
	wantReason := "replica 0 of acme.prod.web (rev 5) not healthy within 1s: GET /up: 503"
	if res.Phase != events.PhaseFailed || res.Reason != wantReason {
		t.Errorf("failing health: phase %s, reason %q, want %q", res.Phase, res.Reason, wantReason)
	}
	if !slices.Equal(res.Backends, serving) {
		t.Errorf("failing health: backends %v, want the old %v", res.Backends, serving)
	}
	if got := deploytest.Messages(t, serving); !slices.Equal(got, []string{"v2"}) {
		t.Errorf("failing health: old replicas answer %v, want v2", got)
	}
	reps, _ := f.rt.List(t.Context())
	if len(reps) != 2 {
		t.Errorf("failing health left %d replicas, want the 2 old ones: %v", len(reps), reps)
	}
	if calls := rec.Take(0); deploytest.CountPrefix(calls, "start") != 1 {
		t.Errorf("failing health: calls %v, want one start", calls)
	}
	if fs := rc.Failures(); len(fs) != 1 || fs[0].Revision != 5 || fs[0].Reason != wantReason {
		t.Errorf("Failures() = %+v", fs)
	}

	// The same failed spec is not retried in a hot loop.
	res, err = rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 5, Spec: bad})
	if err != nil || res.Phase != events.PhaseFailed || res.RetryAt.IsZero() || len(res.Backends) != 2 {
		t.Errorf("held-back reconcile: err %v, phase %s, retry at %v, backends %v", err, res.Phase, res.RetryAt, res.Backends)
	}
	if calls := rec.Take(0); len(calls) != 0 {
		t.Errorf("held-back reconcile made calls %v", calls)
	}

	// Removed stops every replica.
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 6, Removed: true})
	if res.Phase != events.PhaseRemoved || len(res.Backends) != 0 {
		t.Errorf("removed: phase %s, backends %v", res.Phase, res.Backends)
	}
	if reps, _ := f.rt.List(t.Context()); len(reps) != 0 {
		t.Errorf("removed left %v", reps)
	}
	for _, b := range serving {
		if deploytest.HTTPStatus(b+"/up") != 0 {
			t.Errorf("%s still answers after remove", b)
		}
	}
	if fs := rc.Failures(); len(fs) != 0 {
		t.Errorf("Failures() after remove = %+v", fs)
	}
}

// An agent that crashed and restarted adopts the processes it started,
// notices one that died meanwhile, and replaces only that one.
func TestProcessAdoptAfterRestart(t *testing.T) {
	bin := imagetest.DemoBinary(t)
	node, dir := deploytest.Node(t), t.TempDir()
	first := newProcessFixture(t, node, dir)
	t.Cleanup(func() { stopAll(t, first.rt) })
	spec := demoSpec(bin, 2, "v1")
	res := deploytest.MustReconcile(t, first.rc, deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	before := deploytest.IDsByIndex(res.Replicas)

	// The "restarted agent": a new runtime and reconciler on the same dir.
	second := newProcessFixture(t, node, dir)
	reps, err := second.rt.List(t.Context())
	if err != nil || len(reps) != 2 {
		t.Fatalf("adopt: list = %v, %v; want 2 replicas", reps, err)
	}
	for _, r := range reps {
		if r.State != deploy.StateRunning || r.ID != before[r.Index] || r.HostPort == 0 {
			t.Errorf("adopted %+v", r)
		}
	}

	// Kill replica 1 behind the agent's back; Watch notices by polling.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := second.rt.Watch(ctx)
	victim := deploytest.Identity(t, res.Backends[1])
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if c.Scope != web || c.Action != "exit" {
			t.Errorf("change = %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch reported no change after a replica was killed")
	}

	res = deploytest.MustReconcile(t, second.rc, deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	calls := second.rec.Take(0)
	victimIdx := 1
	if victim.Replica == "acme.prod.web#0" {
		victimIdx = 0
	}
	if !slices.Equal(calls, []string{fmt.Sprintf("start %d", victimIdx)}) {
		t.Errorf("repair: calls %v, want one start of replica %d", calls, victimIdx)
	}
	if res.Phase != events.PhaseConverged || len(res.Backends) != 2 {
		t.Errorf("repair: phase %s, backends %v", res.Phase, res.Backends)
	}
	if got := deploytest.IDsByIndex(res.Replicas); got[1-victimIdx] != before[1-victimIdx] {
		t.Errorf("repair touched the healthy replica: %v, was %v", got, before)
	}

	// Records are plain files, written atomically, one per replica.
	files, _ := filepath.Glob(filepath.Join(dir, "replicas", "*"))
	if len(files) != 2 {
		t.Errorf("record files = %v, want 2", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "acme.prod.web-0.log")); err != nil {
		t.Errorf("replica log: %v", err)
	}
}

func TestProcessRejectsImageOnlySpec(t *testing.T) {
	node := deploytest.Node(t)
	f := newProcessFixture(t, node, t.TempDir())
	spec := &events.Spec{Image: "demo:1", Replicas: 1}
	res, err := f.rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	if !errors.Is(err, deploy.ErrUnsupported) || res.Phase != events.PhaseFailed {
		t.Errorf("image-only spec: err %v, phase %s; want ErrUnsupported, failed", err, res.Phase)
	}
	t.Logf("reason: %s", res.Reason)
}

// A replica that exits at once reports how: its exit status or signal,
// never a bare "process is gone".
func TestProcessExitDetail(t *testing.T) {
	node := deploytest.Node(t)
	f := newProcessFixture(t, node, t.TempDir())
	t.Cleanup(func() { stopAll(t, f.rt) })
	for i, tt := range []struct{ script, want string }{
		{"exit 3", "exit status 3"},
		{"kill -9 $$", "signal: killed"},
	} {
		spec := &events.Spec{Command: []string{"sh", "-c", tt.script}, Replicas: 1}
		rep, err := f.rt.Start(t.Context(), deploy.ReplicaSpec{Scope: web, Index: i, Revision: 1, SpecHash: deploy.SpecHash(spec), Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		var got deploy.Replica
		if err := natstest.Poll(10*time.Second, func() error {
			reps, err := f.rt.List(t.Context())
			if err != nil {
				return err
			}
			for _, r := range reps {
				if r.ID == rep.ID && r.State == deploy.StateExited {
					got = r
					return nil
				}
			}
			return fmt.Errorf("%s has not exited", rep.ID)
		}); err != nil {
			t.Fatal(err)
		}
		if got.Detail != tt.want {
			t.Errorf("%q: detail %q, want %q", tt.script, got.Detail, tt.want)
		}
	}
}

// The log of a replica that exited is read back from its file, stdout and
// stderr in the order written, after the replica is gone too.
func TestProcessTail(t *testing.T) {
	node := deploytest.Node(t)
	f := newProcessFixture(t, node, t.TempDir())
	t.Cleanup(func() { stopAll(t, f.rt) })
	spec := &events.Spec{Command: []string{"sh", "-c", "echo one; echo two >&2; echo; echo three; exit 3"}, Replicas: 1}
	rep, err := f.rt.Start(t.Context(), deploy.ReplicaSpec{Scope: web, Revision: 1, SpecHash: deploy.SpecHash(spec), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if err := natstest.Poll(10*time.Second, func() error {
		h, err := f.rt.Health(t.Context(), rep.ID)
		if err != nil || h.State != deploy.StateExited {
			return fmt.Errorf("state %s, err %v", h.State, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lines, err := f.rt.Tail(t.Context(), rep.ID, 2)
	if err != nil || strings.Join(lines, "|") != "two|three" {
		t.Errorf("tail %q, err %v; want two, three", lines, err)
	}
}
