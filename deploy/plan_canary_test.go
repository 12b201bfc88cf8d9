package deploy

import (
	"testing"

	"github.com/hoist-dev/hoist/events"
)

func canaryRep(id string, index int, hash string, opts ...func(*Replica)) Replica {
	r := rep(id, index, hash, opts...)
	r.Track = TrackCanary
	return r
}

func withCanary(d Desired, spec *events.Spec, n int) Desired {
	d.Canary = &CanaryDesired{ID: d.Revision, Spec: spec, Replicas: n}
	return d
}

// The canary is a track of its own: its own indexes and hash beside the
// stable ones, planned after them.
func TestPlanCanaryTrack(t *testing.T) {
	v1, v2 := testSpec(2), testSpec(9, func(s *events.Spec) { s.Image = "demo:2" })
	h1, h2 := SpecHash(v1), SpecHash(v2)
	promoted := testSpec(2, func(s *events.Spec) { s.Image = "demo:2" })
	stable := []Replica{rep("s0", 0, h1), rep("s1", 1, h1)}
	cases := []struct {
		name    string
		desired Desired
		actual  []Replica
		want    string
	}{
		{
			name:    "a canary starts beside the stable replicas, which stay",
			desired: withCanary(Desired{Scope: web, Revision: 2, Spec: v1}, v2, 1),
			actual:  stable,
			want:    "start c0, wait c0",
		},
		{
			name:    "the canary's count is its own, not its spec's",
			desired: withCanary(Desired{Scope: web, Revision: 2, Spec: v1}, v2, 2),
			actual:  append(stable, canaryRep("c0", 0, h2)),
			want:    "start c1, wait c1",
		},
		{
			name:    "a running canary is converged",
			desired: withCanary(Desired{Scope: web, Revision: 3, Spec: v1}, v2, 1),
			actual:  append(stable, canaryRep("c0", 0, h2)),
			want:    "",
		},
		{
			name:    "scaling the stable spec leaves the canary alone",
			desired: withCanary(Desired{Scope: web, Revision: 3, Spec: testSpec(3)}, v2, 1),
			actual:  append(stable, canaryRep("c0", 0, h2)),
			want:    "start 2, wait 2",
		},
		{
			name:    "a promotion rolls the stable replicas start-first, then stops the canary's",
			desired: Desired{Scope: web, Revision: 4, Spec: promoted},
			actual:  append(stable, canaryRep("c0", 0, h2)),
			want:    "start 0, wait 0, stop s0, start 1, wait 1, stop s1, stop c0",
		},
		{
			name:    "an abort stops only the canary's replicas, highest first",
			desired: Desired{Scope: web, Revision: 4, Spec: v1},
			actual:  append(stable, canaryRep("c0", 0, h2), canaryRep("c1", 1, h2)),
			want:    "stop c1, stop c0",
		},
		{
			name:    "a dead canary replica is removed and started again",
			desired: withCanary(Desired{Scope: web, Revision: 3, Spec: v1}, v2, 1),
			actual:  append(stable, canaryRep("c0", 0, h2, state(StateExited))),
			want:    "remove c0, start c0, wait c0",
		},
		{
			name:    "a canary of the stable spec's image still gets replicas of its own",
			desired: withCanary(Desired{Scope: web, Revision: 2, Spec: v1}, testSpec(1), 1),
			actual:  stable,
			want:    "start c0, wait c0",
		},
		{
			name:    "removal stops the canary first",
			desired: Desired{Scope: web, Revision: 5, Spec: v1, Removed: true},
			actual:  append(stable, canaryRep("c0", 0, h2)),
			want:    "stop c0, stop s1, stop s0",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPlan(t, tc.want, planString(Plan(tc.desired, tc.actual)))
		})
	}
}

func TestCanaryLabelsAndNames(t *testing.T) {
	rs := ReplicaSpec{Scope: web, Track: TrackCanary, Index: 0, Revision: 4, SpecHash: "abcdef0123456789", Spec: testSpec(1)}
	l := Labels("n1", rs)
	if l[LabelTrack] != "canary" {
		t.Fatalf("labels = %v", l)
	}
	r, ok := ReplicaFromLabels(l, "n1")
	if !ok || r.Track != TrackCanary || r.Index != 0 {
		t.Fatalf("ReplicaFromLabels = %+v, %v", r, ok)
	}
	stable := rs
	stable.Track = TrackStable
	if ReplicaName("n1", rs) == ReplicaName("n1", stable) {
		t.Fatal("a canary replica and a stable one of one index and hash share a name")
	}
	if _, ok := Labels("n1", stable)[LabelTrack]; ok {
		t.Fatal("a stable replica carries a track label")
	}
	l[LabelTrack] = "shadow"
	if _, ok := ReplicaFromLabels(l, "n1"); ok {
		t.Fatal("a replica of an unknown track was taken as the agent's own")
	}
}
