package docker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/deploytest"
	"github.com/hoist-dev/hoist/internal/imagetest"
)

// The Docker tests run against the local engine. They skip loudly when
// there is none (HOIST_REQUIRE_DOCKER=1 makes that fatal). Containers carry
// a per-test node name and are removed by label when the test ends; the
// demo image (hoist-test/demoapp:<hash>, label hoist.test=1) stays so the
// next run reuses it.

// web is the scope the tests deploy.
var web = events.MustParseScope("acme.prod.web")

type dockerFixture struct {
	docker *client.Client
	image  string
	node   string
	rt     *Runtime
	rec    *deploytest.Recorder
	rc     *deploy.Reconciler
}

func newDockerFixture(t *testing.T) *dockerFixture {
	t.Helper()
	docker := imagetest.RequireDocker(t)
	img := imagetest.TestImage(t)
	node := deploytest.Node(t)
	t.Cleanup(func() { imagetest.RemoveByLabel(t, docker, deploy.LabelNode+"="+node, "hoist.test.node="+node) })
	rt, err := New(Config{Node: node, Client: docker, HostIP: "127.0.0.1", Logger: deploytest.Logger(t), CallTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := deploytest.NewRecorder(t, rt, "/up")
	rc, err := deploy.NewReconciler(deploy.Config{
		Runtime: rec, Node: node, Advertise: "127.0.0.1", Logger: deploytest.Logger(t),
		PollInterval: 100 * time.Millisecond, StopTimeout: 3 * time.Second, RunningGrace: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &dockerFixture{docker: docker, image: img, node: node, rt: rt, rec: rec, rc: rc}
}

func TestReconcileDocker(t *testing.T) {
	f := newDockerFixture(t)
	rc, rec := f.rc, f.rec
	other := imagetest.Bystander(t, f.docker, f.image, "", map[string]string{"hoist.test.node": f.node})

	// Deploy 3 labelled containers.
	spec := &events.Spec{
		Image: f.image, Replicas: 3, Port: 8080, HealthPath: "/up",
		Env:    map[string]string{"DEMO_MESSAGE": "v1"},
		Update: events.UpdateStrategy{HealthTimeout: events.Duration(20 * time.Second)},
	}
	res := deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	if res.Phase != events.PhaseConverged || len(res.Backends) != 3 {
		t.Fatalf("deploy: phase %s, backends %v", res.Phase, res.Backends)
	}
	if got := deploytest.Messages(t, res.Backends); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("deploy: messages %v", got)
	}
	ci, err := f.docker.ContainerInspect(t.Context(), res.Replicas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{deploy.LabelManaged: "true", deploy.LabelNode: f.node, deploy.LabelScope: "acme.prod.web",
		deploy.LabelRevision: "1", deploy.LabelReplica: "0", deploy.LabelSpecHash: deploy.SpecHash(spec)}
	for k, v := range wantLabels {
		if ci.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, ci.Config.Labels[k], v)
		}
	}
	wantName := "/" + deploy.ReplicaName(f.node, deploy.ReplicaSpec{Scope: web, Index: 0, SpecHash: deploy.SpecHash(spec)})
	if ci.Name != wantName {
		t.Errorf("name = %s, want %s", ci.Name, wantName)
	}
	for _, e := range []string{"PORT=8080", "HOIST_NODE=" + f.node, "HOIST_REPLICA=acme.prod.web#0", "HOIST_SCOPE=acme.prod.web", "HOIST_REVISION=1"} {
		if !slices.Contains(ci.Config.Env, e) {
			t.Errorf("env lacks %s: %v", e, ci.Config.Env)
		}
	}
	rec.Take(0)

	// Scale to 4, then to 2.
	spec = spec.Clone()
	spec.Replicas = 4
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 2, Spec: spec})
	if calls := rec.Take(0); !slices.Equal(calls, []string{"start 3"}) || len(res.Backends) != 4 {
		t.Errorf("scale 4: calls %v, backends %v", calls, res.Backends)
	}
	ids := deploytest.IDsByIndex(res.Replicas)
	spec = spec.Clone()
	spec.Replicas = 2
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 3, Spec: spec})
	if calls := rec.Take(2); !slices.Equal(calls, []string{"stop " + ids[3], "stop " + ids[2]}) || len(res.Backends) != 2 {
		t.Errorf("scale 2: calls %v, backends %v", calls, res.Backends)
	}

	// Rolling update: start-first, and two serve at every stop.
	spec = spec.Clone()
	spec.Env = map[string]string{"DEMO_MESSAGE": "v2"}
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 4, Spec: spec})
	if calls := rec.Take(0); !slices.Equal(calls, []string{"start 0", "stop " + ids[0], "start 1", "stop " + ids[1]}) {
		t.Errorf("rolling update: calls %v", calls)
	}
	if got := deploytest.Messages(t, res.Backends); res.Phase != events.PhaseConverged || !slices.Equal(got, []string{"v2"}) {
		t.Errorf("rolling update: phase %s, messages %v", res.Phase, got)
	}

	// A container removed by hand: Watch says so, the next reconcile
	// recreates it and leaves the other alone.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := f.rt.Watch(ctx)
	ids = deploytest.IDsByIndex(res.Replicas)
	if err := f.docker.ContainerRemove(t.Context(), ids[1], container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, ids[1])
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 4, Spec: spec})
	if calls := rec.Take(0); !slices.Equal(calls, []string{"start 1"}) {
		t.Errorf("drift repair: calls %v, want start 1", calls)
	}
	if got := deploytest.IDsByIndex(res.Replicas); res.Phase != events.PhaseConverged || got[0] != ids[0] || got[1] == ids[1] {
		t.Errorf("drift repair: phase %s, ids %v (were %v)", res.Phase, got, ids)
	}
	serving := res.Backends

	// Failing health: old replicas keep serving.
	bad := spec.Clone()
	bad.Env = map[string]string{"DEMO_MESSAGE": "v3", "DEMO_FAIL_HEALTH": "1"}
	bad.Update.HealthTimeout = events.Duration(2 * time.Second)
	res, err = rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 5, Spec: bad})
	if !errors.Is(err, deploy.ErrUnhealthy) || res.Phase != events.PhaseFailed {
		t.Fatalf("failing health: err %v, phase %s", err, res.Phase)
	}
	if want := "replica 0 of acme.prod.web (rev 5) not healthy within 2s: GET /up: 503"; res.Reason != want {
		t.Errorf("failing health: reason %q, want %q", res.Reason, want)
	}
	if got := deploytest.Messages(t, serving); !slices.Equal(res.Backends, serving) || !slices.Equal(got, []string{"v2"}) {
		t.Errorf("failing health: backends %v (want %v), messages %v", res.Backends, serving, got)
	}
	rec.Take(0)

	// A missing image gives a clear failure, and the old replicas serve on.
	missing := spec.Clone()
	missing.Image = "hoist-test/missing:nope"
	res, err = rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 6, Spec: missing})
	if !errors.Is(err, deploy.ErrImageNotFound) || res.Phase != events.PhaseFailed ||
		!strings.Contains(res.Reason, `image "hoist-test/missing:nope" not found locally and pull failed: `) {
		t.Errorf("missing image: err %v, phase %s, reason %q", err, res.Phase, res.Reason)
	}
	if !slices.Equal(res.Backends, serving) {
		t.Errorf("missing image: backends %v, want %v", res.Backends, serving)
	}
	// The pull is not repeated for the same revision, even past the
	// reconciler's backoff.
	rc.ForgetFailure(web)
	if _, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 6, Spec: missing}); !errors.Is(err, deploy.ErrImageNotFound) {
		t.Errorf("missing image again: %v", err)
	}

	// A command-only spec cannot run on Docker.
	cmdOnly := &events.Spec{Command: []string{"/demoapp"}, Replicas: 2}
	if _, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 7, Spec: cmdOnly}); !errors.Is(err, deploy.ErrUnsupported) {
		t.Errorf("command-only spec: err %v, want ErrUnsupported", err)
	}
	rec.Take(0)

	// Removed stops every replica of the scope and nothing else.
	res = deploytest.MustReconcile(t, rc, deploy.Desired{Scope: web, Revision: 8, Removed: true})
	if reps, _ := f.rt.List(t.Context()); res.Phase != events.PhaseRemoved || len(reps) != 0 {
		t.Errorf("removed: phase %s, left %v", res.Phase, reps)
	}
	if !imagetest.Running(t, f.docker, other) {
		t.Errorf("the unlabelled container %s was touched", other[:12])
	}
}

func waitChange(t *testing.T, changes <-chan deploy.Change, id string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-changes:
			if c.ID == id && c.Scope == web {
				return
			}
		case <-timeout:
			t.Fatalf("Watch reported no change for %s", id[:12])
		}
	}
}

// A container that holds a replica's name without this node's labels is
// never touched: the rollout fails and says why.
func TestDockerNameCollision(t *testing.T) {
	f := newDockerFixture(t)
	spec := &events.Spec{Image: f.image, Replicas: 2, Update: events.UpdateStrategy{HealthTimeout: events.Duration(10 * time.Second)}}
	hash := deploy.SpecHash(spec)
	squatter := imagetest.Bystander(t, f.docker, f.image, deploy.ReplicaName(f.node, deploy.ReplicaSpec{Scope: web, Index: 1, SpecHash: hash}), map[string]string{"hoist.test.node": f.node})

	res, err := f.rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 1, Spec: spec})
	if !errors.Is(err, deploy.ErrForeign) || res.Phase != events.PhaseFailed {
		t.Fatalf("collision: err %v, phase %s; want ErrForeign", err, res.Phase)
	}
	if !imagetest.Running(t, f.docker, squatter) {
		t.Errorf("the squatting container was touched")
	}
	// Replica 0 had started but was not yet proven: it is taken back too.
	if len(res.Replicas) != 0 {
		t.Errorf("collision: replicas %v, want none", res.Replicas)
	}

	// Starting a replica that already runs adopts it instead of
	// duplicating it.
	rs := deploy.ReplicaSpec{Scope: web, Index: 0, Revision: 1, SpecHash: hash, Spec: spec}
	first, err := f.rt.Start(t.Context(), rs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.rt.Start(t.Context(), rs)
	if err != nil || again.ID != first.ID {
		t.Errorf("start of a running replica: %v, id %s, want adopted %s", err, again.ID, first.ID)
	}

	// With the name freed, the retry (a new revision) converges; with no
	// health path, running for the grace period counts as healthy.
	imagetest.RemoveByLabel(t, f.docker, "hoist.test.node="+f.node)
	res = deploytest.MustReconcile(t, f.rc, deploy.Desired{Scope: web, Revision: 2, Spec: spec})
	if res.Phase != events.PhaseConverged || len(res.Replicas) != 2 || res.Replicas[0].ID != first.ID {
		t.Errorf("after collision: phase %s, replicas %v", res.Phase, res.Replicas)
	}
	if len(res.Backends) != 0 {
		t.Errorf("backends %v for a spec without a port", res.Backends)
	}
}
