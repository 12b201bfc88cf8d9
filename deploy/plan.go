package deploy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hoist-dev/hoist/events"
)

// ActionKind is one kind of step of a plan.
type ActionKind string

const (
	// ActionStart starts a new replica at Index with the desired spec.
	ActionStart ActionKind = "start"
	// ActionWaitHealthy waits until the replica started at Index passes its
	// health check; if it does not in time, the rollout stops here.
	ActionWaitHealthy ActionKind = "wait"
	// ActionStop stops Replica gracefully and then removes it.
	ActionStop ActionKind = "stop"
	// ActionRemove removes Replica, which no longer runs.
	ActionRemove ActionKind = "remove"
)

// Action is one step of a plan.
type Action struct {
	Kind     ActionKind
	Track    Track
	Index    int     // within Track
	SpecHash string  // start, wait: the new replica's spec hash
	Replica  Replica // stop, remove: the replica acted on
	Reason   string
}

func (a Action) String() string {
	switch a.Kind {
	case ActionStop, ActionRemove:
		return fmt.Sprintf("%s %s", a.Kind, a.Replica.ID)
	}
	return fmt.Sprintf("%s %s", a.Kind, a.Track.Index(a.Index))
}

// Plan returns the steps that take the scope's replicas in actual to d.
// It is pure: the Reconciler observes, Plan decides, the Reconciler acts.
// Replicas of other scopes in actual are ignored. A Desired with no spec
// that is not Removed says nothing about what should run, so it plans
// nothing at all.
//
// A scope's replicas are two tracks, each with its own indexes: the stable
// spec's Spec.Replicas, and a canary's Canary.Replicas beside them. The
// stable track is planned first, so that after a promotion (the canary's
// spec is now the stable one, and there is no canary) the stable replicas
// roll start-first to it, health-gated, and only then are the canary's
// replicas stopped; after an abort only those stops are left. Every stop
// goes through the reconciler's announce, confirm and drain, so balancers
// send a replica nothing new before it stops.
//
// The rules of one track, in the order the steps come:
//  1. A replica that no longer runs (exited, dead, created) is removed; its
//     index is then missing, so it is recreated (drift repair).
//  2. Removed stops every replica, the canary's first, highest index first.
//  3. Replicas at an index ≥ the track's count are stopped, highest first;
//     with no canary, that is every canary replica.
//  4. Of several replicas at one index, one stays: healthy with the
//     current hash, else healthy, else current hash, else the oldest.
//  5. Missing indexes are started, then each is waited on.
//  6. Replicas with another spec hash are replaced start-first in batches
//     of the spec's EffectiveSurge(): start the batch, wait for each to be
//     healthy, then stop the replicas they replace.
//
// Healthy current-hash replicas at indexes below the count are never
// touched, so scaling only starts or stops the difference.
func Plan(d Desired, actual []Replica) []Action {
	if d.Spec == nil && !d.Removed {
		return nil // nothing is known about what should run: change nothing
	}
	var acts []Action
	alive := map[Track][]Replica{}
	for _, r := range sortedReplicas(actual) {
		switch {
		case r.Scope != d.Scope:
		case r.State.Gone():
			acts = append(acts, Action{Kind: ActionRemove, Track: r.Track, Index: r.Index, Replica: r, Reason: string(r.State)})
		case r.State.Alive():
			alive[r.Track] = append(alive[r.Track], r)
		}
	}

	if d.Removed {
		for _, t := range []Track{TrackCanary, TrackStable} {
			for _, r := range slices.Backward(alive[t]) {
				acts = append(acts, Action{Kind: ActionStop, Track: t, Index: r.Index, Replica: r, Reason: "scope removed"})
			}
		}
		return acts
	}
	for _, t := range []Track{TrackStable, TrackCanary} {
		spec, want := d.specOf(t)
		acts = append(acts, planTrack(t, spec, want, alive[t])...)
	}
	return acts
}

// planTrack plans one track's replicas alive (sorted by index) to want
// replicas of spec; a nil spec stops them all.
func planTrack(t Track, spec *events.Spec, want int, alive []Replica) []Action {
	var acts []Action
	if spec == nil {
		for _, r := range slices.Backward(alive) {
			acts = append(acts, Action{Kind: ActionStop, Track: t, Index: r.Index, Replica: r, Reason: "canary ended"})
		}
		return acts
	}
	hash := SpecHash(spec)
	byIndex := map[int][]Replica{}
	for _, r := range slices.Backward(alive) {
		if r.Index >= want {
			acts = append(acts, Action{Kind: ActionStop, Track: t, Index: r.Index, Replica: r, Reason: "scale down"})
		}
	}
	for _, r := range alive {
		if r.Index < want {
			byIndex[r.Index] = append(byIndex[r.Index], r)
		}
	}

	keep := make(map[int]Replica, want)
	for i := range want {
		rs := byIndex[i]
		if len(rs) == 0 {
			continue
		}
		best := slices.MaxFunc(rs, func(a, b Replica) int { return compareKeep(a, b, hash) })
		keep[i] = best
		for _, r := range rs {
			if r.ID != best.ID {
				acts = append(acts, Action{Kind: ActionStop, Track: t, Index: i, Replica: r, Reason: "duplicate of " + ShortID(best.ID)})
			}
		}
	}

	var missing, stale []int
	for i := range want {
		r, ok := keep[i]
		switch {
		case !ok:
			missing = append(missing, i)
		case r.SpecHash != hash:
			stale = append(stale, i)
		}
	}
	for _, i := range missing {
		acts = append(acts, Action{Kind: ActionStart, Track: t, Index: i, SpecHash: hash, Reason: "missing"})
	}
	for _, i := range missing {
		acts = append(acts, Action{Kind: ActionWaitHealthy, Track: t, Index: i, SpecHash: hash})
	}

	for batch := range slices.Chunk(stale, spec.EffectiveSurge()) {
		for _, i := range batch {
			acts = append(acts, Action{Kind: ActionStart, Track: t, Index: i, SpecHash: hash, Reason: "spec changed"})
		}
		for _, i := range batch {
			acts = append(acts, Action{Kind: ActionWaitHealthy, Track: t, Index: i, SpecHash: hash})
		}
		for _, i := range batch {
			acts = append(acts, Action{Kind: ActionStop, Track: t, Index: i, Replica: keep[i], Reason: "replaced"})
		}
	}
	return acts
}

// compareKeep orders replicas of one index by how much we would rather
// keep them; the greatest stays.
func compareKeep(a, b Replica, hash string) int {
	rank := func(r Replica) int {
		n := 0
		if r.IsHealthy() {
			n += 2
		}
		if r.SpecHash == hash {
			n++
		}
		return n
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	// Older first: it has served longer. The ID breaks ties so the plan
	// does not depend on the order the runtime listed them in.
	if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

func sortedReplicas(rs []Replica) []Replica {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Replica) int {
		if c := cmp.Compare(a.Track, b.Track); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Index, b.Index); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return rs
}
