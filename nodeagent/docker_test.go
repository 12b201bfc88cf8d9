package nodeagent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/docker"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// The Docker tests run against the local engine and skip loudly without
// one (HOIST_REQUIRE_DOCKER=1 makes that fatal). Every container carries
// the test's unique node name and is removed by label when the test ends.

const bystanderLabel = "hoist.test.node"

type dockerWorld struct {
	*harness
	docker *client.Client
	image  string
	rt     *countingRuntime
}

func newDockerWorld(t *testing.T) *dockerWorld {
	t.Helper()
	engine := imagetest.RequireDocker(t)
	img := imagetest.TestImage(t)
	h := newHarness(t)
	t.Cleanup(func() { imagetest.RemoveByLabel(t, engine, deploy.LabelNode+"="+h.node, bystanderLabel+"="+h.node) })
	rt, err := docker.New(docker.Config{Node: h.node, Client: engine, HostIP: "127.0.0.1", Logger: h.log, CallTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &dockerWorld{harness: h, docker: engine, image: img, rt: &countingRuntime{Runtime: rt}}
}

func (w *dockerWorld) spec(replicas int, env map[string]string) events.Spec {
	return events.Spec{Image: w.image, Port: 8080, Replicas: replicas, HealthPath: "/up", Env: env,
		Update: events.UpdateStrategy{HealthTimeout: events.Duration(30 * time.Second)}}
}

func (w *dockerWorld) options() Options {
	o := w.harness.options(w.rt)
	o.RuntimeName = "docker"
	return o
}

// One agent on the real engine: a deploy, a bystander it must not touch, a
// replica removed by hand that comes back, a failing rollout that leaves
// the old replicas serving, and a rollback.
func TestDockerAgent(t *testing.T) {
	w := newDockerWorld(t)
	bystander := imagetest.Bystander(t, w.docker, w.image, "", map[string]string{bystanderLabel: w.node})
	a := w.open(w.options())

	rev := w.append(&events.Deployed{Spec: w.spec(2, map[string]string{"DEMO_MESSAGE": "one"})})
	st := waitConverged(t, a, scopeWeb, rev, 2)
	serving(t, st)

	// docker rm -f one replica: the runtime's event brings it back.
	victim := st.Replicas[0]
	ctx := context.Background()
	if err := w.docker.ContainerRemove(ctx, victim.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		st = scopeStatus(a, scopeWeb)
		for _, r := range st.Replicas {
			if r.ID == victim.ID {
				return fmt.Errorf("replica %s still listed", victim.ID[:12])
			}
		}
		if st.Phase != events.PhaseConverged || len(st.Replicas) != 2 {
			return fmt.Errorf("phase %s with %d replicas", st.Phase, len(st.Replicas))
		}
		return nil
	})
	serving(t, st)

	bad := w.spec(2, map[string]string{"DEMO_FAIL_HEALTH": "1"})
	bad.Update.HealthTimeout = events.Duration(2 * time.Second)
	badRev := w.append(&events.Deployed{Spec: bad})
	natstest.Eventually(t, 60*time.Second, func() error {
		if s := scopeStatus(a, scopeWeb); s.Phase != events.PhaseFailed || s.Desired != badRev {
			return fmt.Errorf("phase %s desired %d", s.Phase, s.Desired)
		}
		return nil
	})
	after := scopeStatus(a, scopeWeb)
	if len(after.Replicas) != 2 || after.Replicas[0].ID != st.Replicas[0].ID || after.Replicas[1].ID != st.Replicas[1].ID {
		t.Fatalf("old replicas changed by the failed rollout: %+v", after.Replicas)
	}
	serving(t, after)
	if !strings.Contains(after.Error, "not healthy") {
		t.Errorf("error %q", after.Error)
	}

	rb := w.append(&events.RolledBack{To: rev})
	waitConverged(t, a, scopeWeb, rb, 2)
	if !imagetest.Running(t, w.docker, bystander) {
		t.Fatal("the agent touched a container without its labels")
	}
}

// NATS down and no reference file: running containers are left alone.
func TestDockerUnreadableStateLeavesContainers(t *testing.T) {
	w := newDockerWorld(t)
	a := w.open(w.options())
	rev := w.append(&events.Deployed{Spec: w.spec(2, nil)})
	st := waitConverged(t, a, scopeWeb, rev, 2)
	a.Close()
	if err := os.Remove(w.ref); err != nil {
		t.Fatal(err)
	}
	w.nats.Shutdown()

	rt := &countingRuntime{Runtime: w.rt.Runtime}
	opts := w.options()
	opts.Runtime, opts.Resync = rt, 50*time.Millisecond
	b := w.open(opts)
	natstest.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(b.Status().Error, "left untouched") || rt.lists.Load() < 5 {
			return fmt.Errorf("node error %q after %d lists", b.Status().Error, rt.lists.Load())
		}
		return nil
	})
	if n := rt.mutations(); n != 0 {
		t.Fatalf("the agent changed containers %d times without a desired state", n)
	}
	for _, r := range st.Replicas {
		if !imagetest.Running(t, w.docker, r.ID) {
			t.Errorf("container %s stopped", r.ID[:12])
		}
	}
	serving(t, st)
}

// The docker flavour of the SIGKILL test.
func TestDockerAgentKilledMidRolloutConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs two agent processes against the Docker engine")
	}
	w := newDockerWorld(t)
	cfg := subprocessConfig{Node: w.node, Scopes: []string{scopeWeb.String()}, Ref: w.ref, Data: w.dataDir, URL: w.nats.URL(), Runtime: "docker"}
	runMidRolloutKill(t, w.harness, w.rt, cfg, map[string]events.Spec{
		"good": w.spec(2, map[string]string{"DEMO_MESSAGE": "v1"}),
		"slow": w.spec(2, map[string]string{"DEMO_FAIL_HEALTH": "1"}),
		"next": w.spec(2, map[string]string{"DEMO_MESSAGE": "v3"}),
	})
}
