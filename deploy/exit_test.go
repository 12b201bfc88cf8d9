package deploy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/internal/deploytest"
)

// A replica that exited is removed with what it printed: the reconcile
// reads its last lines first and returns them in Result.Exits.
func TestReconcileKeepsLastLinesOfExitedReplica(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt)
	d := deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(2, "OUTPUT=listening|panic: nil map|goroutine 1")}
	res := deploytest.MustReconcile(t, rc, d)
	if len(res.Exits) != 0 {
		t.Fatalf("exits on a first start: %+v", res.Exits)
	}
	dead := res.Replicas[1]
	rt.mu.Lock()
	r := rt.reps[dead.ID]
	r.State, r.Detail = deploy.StateExited, "exit code 2"
	rt.reps[dead.ID] = r
	rt.mu.Unlock()

	res = deploytest.MustReconcile(t, rc, d)
	if len(res.Exits) != 1 {
		t.Fatalf("exits %+v, want the dead replica's", res.Exits)
	}
	e := res.Exits[0]
	if e.ID != dead.ID || e.Index != 1 || e.Revision != 1 || e.Detail != "exit code 2" {
		t.Errorf("exit %+v", e)
	}
	if want := "exited (exit code 2); last output: listening | panic: nil map | goroutine 1"; e.Summary() != want {
		t.Errorf("summary %q, want %q", e.Summary(), want)
	}
	if len(res.Replicas) != 2 || res.Replicas[1].ID == dead.ID {
		t.Errorf("the dead replica was not replaced: %+v", res.Replicas)
	}
}

// A new replica that exits before it is healthy is taken back with its
// output: its last lines are in the rollout's error.
func TestReconcileExitedNewReplicaErrorHasLastLines(t *testing.T) {
	rt := newFake()
	rc := newFakeReconciler(t, rt)
	_, err := rc.Reconcile(t.Context(), deploy.Desired{Scope: web, Revision: 1, Spec: fakeSpec(1, "EXIT=1", "OUTPUT=reading config|no such file")})
	if !errors.Is(err, deploy.ErrExited) || !strings.HasSuffix(err.Error(), "exited: exit code 1; last output: reading config | no such file") {
		t.Errorf("err = %v", err)
	}
}
