package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-dev/hoist/events"
)

var (
	web   = events.MustParseScope("acme.prod.web")
	api   = events.MustParseScope("acme.prod.api")
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func testSpec(replicas int, mod ...func(*events.Spec)) *events.Spec {
	s := &events.Spec{Image: "demo:1", Replicas: replicas, Port: 8080, HealthPath: "/up"}
	for _, m := range mod {
		m(s)
	}
	return s
}

func surge(n int) func(*events.Spec) { return func(s *events.Spec) { s.Update.Surge = n } }

// rep is a running replica with no health verdict, started in index order.
func rep(id string, index int, hash string, opts ...func(*Replica)) Replica {
	r := Replica{ID: id, Scope: web, Index: index, SpecHash: hash, State: StateRunning,
		StartedAt: epoch.Add(time.Duration(index) * time.Second)}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func state(s ReplicaState) func(*Replica) { return func(r *Replica) { r.State = s } }
func healthy(b bool) func(*Replica)       { return func(r *Replica) { r.Healthy = &b } }
func scope(s events.Scope) func(*Replica) { return func(r *Replica) { r.Scope = s } }
func started(sec int) func(*Replica) {
	return func(r *Replica) { r.StartedAt = epoch.Add(time.Duration(sec) * time.Second) }
}

func TestPlan(t *testing.T) {
	cur := SpecHash(testSpec(1))
	const old = "0ld0ld0ld0ld0ld0"
	cases := []struct {
		name    string
		desired Desired
		actual  []Replica
		want    string
	}{
		{
			name:    "fresh deploy starts every index, then waits for each",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(3)},
			want:    "start 0, start 1, start 2, wait 0, wait 1, wait 2",
		},
		{
			name:    "converged does nothing",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(3)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur), rep("a2", 2, cur, healthy(true))},
			want:    "",
		},
		{
			name:    "a new revision with the same hash (scale to the same count) keeps replicas",
			desired: Desired{Scope: web, Revision: 7, Spec: testSpec(2)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur)},
			want:    "",
		},
		{
			name:    "scale up starts only the missing indexes",
			desired: Desired{Scope: web, Revision: 2, Spec: testSpec(5)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur), rep("a2", 2, cur)},
			want:    "start 3, start 4, wait 3, wait 4",
		},
		{
			name:    "scale up fills a gap in the middle",
			desired: Desired{Scope: web, Revision: 2, Spec: testSpec(3)},
			actual:  []Replica{rep("a0", 0, cur), rep("a2", 2, cur)},
			want:    "start 1, wait 1",
		},
		{
			name:    "scale down stops the highest indexes first",
			desired: Desired{Scope: web, Revision: 3, Spec: testSpec(2)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur), rep("a2", 2, cur), rep("a3", 3, cur), rep("a4", 4, cur)},
			want:    "stop a4, stop a3, stop a2",
		},
		{
			name:    "scale to zero stops all",
			desired: Desired{Scope: web, Revision: 3, Spec: testSpec(0)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur)},
			want:    "stop a1, stop a0",
		},
		{
			name:    "spec change rolls start-first, one at a time by default",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(3)},
			actual:  []Replica{rep("a0", 0, old), rep("a1", 1, old), rep("a2", 2, old)},
			want: "start 0, wait 0, stop a0, " +
				"start 1, wait 1, stop a1, " +
				"start 2, wait 2, stop a2",
		},
		{
			name:    "surge 2 rolls two at a time",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(3, surge(2))},
			actual:  []Replica{rep("a0", 0, old), rep("a1", 1, old), rep("a2", 2, old)},
			want: "start 0, start 1, wait 0, wait 1, stop a0, stop a1, " +
				"start 2, wait 2, stop a2",
		},
		{
			name:    "surge beyond the replica count rolls all at once",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(2, surge(10))},
			actual:  []Replica{rep("a0", 0, old), rep("a1", 1, old)},
			want:    "start 0, start 1, wait 0, wait 1, stop a0, stop a1",
		},
		{
			name:    "scale up and spec change: missing first, then the roll",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(3)},
			actual:  []Replica{rep("a0", 0, old), rep("a1", 1, old)},
			want:    "start 2, wait 2, start 0, wait 0, stop a0, start 1, wait 1, stop a1",
		},
		{
			name:    "scale down and spec change: stop the extras, roll the rest",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(1)},
			actual:  []Replica{rep("a0", 0, old), rep("a1", 1, old), rep("a2", 2, old)},
			want:    "stop a2, stop a1, start 0, wait 0, stop a0",
		},
		{
			name:    "an exited replica is removed and recreated",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(3)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur, state(StateExited)), rep("a2", 2, cur)},
			want:    "remove a1, start 1, wait 1",
		},
		{
			name:    "dead and created debris is removed",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(2)},
			actual:  []Replica{rep("a0", 0, cur, state(StateDead)), rep("b0", 0, cur, state(StateCreated)), rep("a1", 1, cur)},
			want:    "remove a0, remove b0, start 0, wait 0",
		},
		{
			name:    "an exited replica beyond the count is only removed",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(1)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur, state(StateExited))},
			want:    "remove a1",
		},
		{
			name:    "a foreign hash beyond the count is just stopped, not replaced",
			desired: Desired{Scope: web, Revision: 5, Spec: testSpec(2)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur), rep("x2", 2, old)},
			want:    "stop x2",
		},
		{
			name:    "restarting, paused and unhealthy current replicas are left alone",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(3)},
			actual: []Replica{rep("a0", 0, cur, state(StateRestarting)), rep("a1", 1, cur, state(StatePaused)),
				rep("a2", 2, cur, healthy(false))},
			want: "",
		},
		{
			name:    "a replica being removed by the engine is ignored",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(1)},
			actual:  []Replica{rep("a0", 0, cur), rep("b0", 0, old, state(StateRemoving))},
			want:    "",
		},
		{
			name:    "removed stops everything, highest first, and clears debris",
			desired: Desired{Scope: web, Revision: 9, Removed: true},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, old), rep("a2", 2, cur, state(StateExited))},
			want:    "remove a2, stop a1, stop a0",
		},
		{
			name:    "no spec and not removed: unknown desired state changes nothing",
			desired: Desired{Scope: web, Revision: 3},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur, state(StateExited))},
			want:    "",
		},
		{
			name:    "other scopes are not ours to plan",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(1)},
			actual:  []Replica{rep("a0", 0, cur), rep("p0", 0, old, scope(api)), rep("p1", 1, old, scope(api), state(StateExited))},
			want:    "",
		},
		{
			name:    "duplicate after a crash mid-rollout: healthy current hash wins",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(2)},
			actual: []Replica{rep("a0", 0, cur), rep("a1", 1, old, healthy(true)),
				rep("b1", 1, cur, healthy(true), started(30))},
			want: "stop a1",
		},
		{
			name:    "duplicate with an unproven new replica: the healthy old one stays and is rolled properly",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(2)},
			actual: []Replica{rep("a0", 0, cur), rep("a1", 1, old, healthy(true)),
				rep("b1", 1, cur, healthy(false), started(30))},
			want: "stop b1, start 1, wait 1, stop a1",
		},
		{
			name:    "duplicate of two unhealthy: the current hash stays",
			desired: Desired{Scope: web, Revision: 4, Spec: testSpec(1)},
			actual:  []Replica{rep("a0", 0, old, healthy(false)), rep("b0", 0, cur, healthy(false), started(30))},
			want:    "stop a0",
		},
		{
			name:    "duplicate with the same hash: the older stays",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(1)},
			actual:  []Replica{rep("b0", 0, cur, started(50)), rep("a0", 0, cur, started(10)), rep("c0", 0, cur, started(90))},
			want:    "stop b0, stop c0",
		},
		{
			name:    "duplicates beyond the count are all stopped",
			desired: Desired{Scope: web, Revision: 1, Spec: testSpec(1)},
			actual:  []Replica{rep("a0", 0, cur), rep("a1", 1, cur), rep("b1", 1, old)},
			want:    "stop b1, stop a1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.desired, tc.actual)
			checkPlan(t, tc.want, planString(got))
			for _, a := range got {
				if a.Kind == ActionStart && a.SpecHash != SpecHash(tc.desired.Spec) {
					t.Errorf("%s has hash %q, want the desired hash", a, a.SpecHash)
				}
			}
		})
	}
}

func TestPlanDoesNotModifyInput(t *testing.T) {
	actual := []Replica{rep("a2", 2, "x"), rep("a0", 0, "x"), rep("a1", 1, "x")}
	before := slices.Clone(actual)
	Plan(Desired{Scope: web, Revision: 1, Spec: testSpec(1)}, actual)
	if !slices.EqualFunc(actual, before, func(a, b Replica) bool { return a.ID == b.ID }) {
		t.Errorf("Plan reordered its input")
	}
}

// checkPlan compares plans action by action, so a long plan that differs
// in one step prints that step.
func checkPlan(t *testing.T, want, got string) {
	t.Helper()
	if diff := cmp.Diff(strings.Split(want, ", "), strings.Split(got, ", ")); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func planString(acts []Action) string {
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func TestSpecHash(t *testing.T) {
	base := func() *events.Spec {
		return &events.Spec{Image: "demo:1", Command: []string{"serve", "-v"}, Replicas: 3, Port: 8080,
			Env: map[string]string{"A": "1", "B": "2", "C": "3"}, HealthPath: "/up"}
	}
	h := SpecHash(base())
	for range 20 { // map iteration order must not matter
		if SpecHash(base()) != h {
			t.Fatal("SpecHash is not stable")
		}
	}

	same := map[string]func(*events.Spec){
		"replicas": func(s *events.Spec) { s.Replicas = 9 },
		"hosts":    func(s *events.Spec) { s.Hosts = []string{"example.com"} },
		"cache":    func(s *events.Spec) { s.Cache = &events.CachePolicy{TTL: events.Duration(time.Minute)} },
		"update strategy": func(s *events.Spec) {
			s.Update = events.UpdateStrategy{Surge: 3, HealthTimeout: events.Duration(time.Second)}
		},
		"restart no":        func(s *events.Spec) { s.Restart = "no" },
		"same env, new map": func(s *events.Spec) { s.Env = map[string]string{"A": "1", "B": "2", "C": "3"} },
	}
	for name, mod := range same {
		s := base()
		mod(s)
		if SpecHash(s) != h {
			t.Errorf("changing %s changed the hash", name)
		}
	}

	differ := map[string]func(*events.Spec){
		"image":       func(s *events.Spec) { s.Image = "demo:2" },
		"command":     func(s *events.Spec) { s.Command = []string{"serve"} },
		"port":        func(s *events.Spec) { s.Port = 9090 },
		"env value":   func(s *events.Spec) { s.Env["A"] = "x" },
		"env unset":   func(s *events.Spec) { delete(s.Env, "C") },
		"health path": func(s *events.Spec) { s.HealthPath = "/healthz" },
		"restart":     func(s *events.Spec) { s.Restart = "always" },
		"memory":      func(s *events.Spec) { s.MemoryMB = 128 },
		"cpus":        func(s *events.Spec) { s.CPUs = 0.5 },
	}
	for name, mod := range differ {
		s := base()
		mod(s)
		if SpecHash(s) == h {
			t.Errorf("changing %s kept the hash", name)
		}
	}
}
