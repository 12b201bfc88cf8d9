package projector

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// State is a scope's desired state at one revision.
type State struct {
	Scope    events.Scope
	Revision uint64
	// Spec is nil before the first deploy. It is shared with the History
	// that produced it: never modify it, Clone it.
	Spec    *events.Spec
	Removed bool
	Time    time.Time
	Actor   string
	// Canary is the running canary, nil when there is none. Paused and
	// Maintenance are the scope's standing pause and maintenance page.
	// None of them is part of a revision's snapshot: a rollback restores
	// a spec, and ends a canary, but leaves a pause as it is.
	Canary      *Canary
	Paused      *events.Pause
	Maintenance *events.Maintenance
}

// Exists reports whether the scope has been deployed and not removed.
func (s *State) Exists() bool { return s.Spec != nil && !s.Removed }

// snapshot is what a revision left behind: enough to restore it on rollback.
type snapshot struct {
	spec    *events.Spec
	removed bool
}

// History folds one scope's events in revision order. It keeps one snapshot
// per revision (specs are shared between revisions that do not change them),
// which makes "state at revision N" and "roll back to N" cheap.
type History struct {
	state State
	snaps []snapshot // snaps[r-1] is the state after revision r
	ring  Keyring
}

// NewHistory starts an empty history for scope.
func NewHistory(scope events.Scope) *History {
	return &History{state: State{Scope: scope}}
}

// State returns the desired state after the last applied event.
func (h *History) State() State { return h.state }

// Keyring returns the scope's grants and keys. It is shared with the
// history: Clone it to keep it.
func (h *History) Keyring() *Keyring { return &h.ring }

// Revision is the last applied revision, 0 for an empty history.
func (h *History) Revision() uint64 { return h.state.Revision }

// At returns the state as it was right after revision rev.
func (h *History) At(rev uint64) (State, error) {
	if rev == 0 || rev > uint64(len(h.snaps)) {
		return State{}, fmt.Errorf("%w: %s has revisions 1-%d, not %d", ErrNoRevision, h.state.Scope, len(h.snaps), rev)
	}
	snap := h.snaps[rev-1]
	return State{Scope: h.state.Scope, Revision: rev, Spec: snap.spec, Removed: snap.removed}, nil
}

// Take folds the next record of the scope's history. Every record takes its
// revision, in order: a rejected message, or an event that cannot be
// applied (a scale before any deploy, a rollback to a revision that does
// not exist), holds its revision and leaves the desired state as it was,
// so that every reader skips it the same way and the scope's later events
// still apply. Take returns a *Skip for those, and for a record of another
// scope or out of order, which changes nothing at all.
func (h *History) Take(r events.Record) error {
	if r.Scope != h.state.Scope || r.Family != events.FamilyScope {
		return &Skip{Scope: r.Scope, Revision: r.Revision, Reason: fmt.Sprintf("belongs to %s, not scope %s", r.History(), h.state.Scope)}
	}
	if want := h.state.Revision + 1; r.Revision != want {
		return &Skip{Scope: r.Scope, Revision: r.Revision, Reason: fmt.Sprintf("is revision %d, expected %d", r.Revision, want)}
	}
	if r.Err != nil {
		h.hold(r.Revision)
		return &Skip{Kind: r.Kind, Scope: r.Scope, Revision: r.Revision, Reason: r.Err.Error(), Err: r.Err}
	}
	return h.apply(r.Event, r.Revision)
}

// Apply folds an event at the next revision, as if it were an accepted
// record: for tests and for folds of events that were never stored.
func (h *History) Apply(e *events.Event) error {
	if e.Scope != h.state.Scope {
		return skip(e, fmt.Sprintf("belongs to scope %s, not %s", e.Scope, h.state.Scope))
	}
	if want := h.state.Revision + 1; e.Revision != want {
		return skip(e, fmt.Sprintf("has revision %d, expected %d", e.Revision, want))
	}
	return h.apply(e, e.Revision)
}

func (h *History) apply(e *events.Event, rev uint64) error {
	next, change, err := h.next(e, rev)
	if err != nil {
		h.hold(rev)
		s := skip(e, err.Error())
		s.Err = err
		return s
	}
	if change != nil {
		change(&h.ring)
	}
	h.snaps = append(h.snaps, next)
	h.applyTraffic(e, rev)
	h.state.Revision = rev
	h.state.Spec = next.spec
	h.state.Removed = next.removed
	h.state.Time = e.Time
	h.state.Actor = e.Actor
	return nil
}

// hold makes rev a revision that changes nothing.
func (h *History) hold(rev uint64) {
	h.snaps = append(h.snaps, snapshot{spec: h.state.Spec, removed: h.state.Removed})
	h.state.Revision = rev
}

// next computes the snapshot that e, at revision rev, leads to and the
// change it makes to the keyring, without changing h.
func (h *History) next(e *events.Event, rev uint64) (snapshot, ringChange, error) {
	if e.Kind.IsSecretKind() {
		return h.nextSecret(e, rev)
	}
	if e.Kind.IsCanaryKind() || e.Kind.IsTrafficKind() {
		s, err := h.nextTraffic(e)
		return s, nil, err
	}
	s, err := h.nextSpec(e)
	return s, nil, err
}

func (h *History) nextSpec(e *events.Event) (snapshot, error) {
	cur := snapshot{spec: h.state.Spec, removed: h.state.Removed}
	switch d := e.Data.(type) {
	case *events.Deployed:
		if err := h.ring.checkSealedTo(&d.Spec); err != nil {
			return cur, err
		}
		return snapshot{spec: d.Spec.Clone()}, nil
	case *events.Scaled:
		if cur.spec == nil {
			return cur, ErrNoDeploy
		}
		spec := cur.spec.Clone()
		spec.Replicas = d.Replicas
		return snapshot{spec: spec, removed: cur.removed}, nil
	case *events.EnvChanged:
		if cur.spec == nil {
			return cur, ErrNoDeploy
		}
		spec := cur.spec.Clone()
		spec.Env = applyEnv(spec.Env, d)
		return snapshot{spec: spec, removed: cur.removed}, nil
	case *events.RolledBack:
		if d.To == 0 || d.To > uint64(len(h.snaps)) {
			return cur, fmt.Errorf("rolls back to revision %d, which does not precede it", d.To)
		}
		return h.snaps[d.To-1], nil
	case *events.Removed:
		return snapshot{spec: cur.spec, removed: true}, nil
	case nil:
		return cur, errors.New("has no data")
	default:
		return cur, fmt.Errorf("is a %s event, not a scope change", e.Kind)
	}
}

// applyEnv returns env with change applied, leaving env itself untouched.
func applyEnv(env map[string]string, change *events.EnvChanged) map[string]string {
	out := maps.Clone(env)
	if out == nil {
		out = make(map[string]string, len(change.Set))
	}
	maps.Copy(out, change.Set)
	for _, k := range change.Unset {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// PreviousRevision is the target of a plain "rollback": the latest revision
// before the head whose spec differs from the current one and that was not
// a removal. On a removed scope that is the spec it ran before the remove:
// the rollback revives it. ok is false when there is nothing to roll back
// to.
func (h *History) PreviousRevision() (rev uint64, ok bool) {
	cur, removed := h.state.Spec, h.state.Removed
	for r := len(h.snaps) - 1; r >= 1; r-- {
		snap := h.snaps[r-1]
		if snap.removed || snap.spec == nil || (snap.spec == cur && !removed) {
			continue
		}
		// Name the revision that made that spec, not a later one that
		// only kept it (a rejected message, a grant, a key handed on).
		for r > 1 && h.snaps[r-2].spec == snap.spec && !h.snaps[r-2].removed {
			r--
		}
		return uint64(r), true
	}
	return 0, false
}

// Check reports whether e could be applied next, without applying it. The
// CLI uses it to refuse a command that the fold would skip.
func (h *History) Check(e *events.Event) error {
	_, _, err := h.next(e, h.state.Revision+1)
	return err
}

// Fold builds a scope's history from its records in order. Records that
// change nothing are returned as skips.
func Fold(scope events.Scope, recs []events.Record) (*History, []*Skip) {
	h := NewHistory(scope)
	var skips []*Skip
	for _, r := range recs {
		var s *Skip
		if errors.As(h.Take(r), &s) {
			skips = append(skips, s)
		}
	}
	return h, skips
}

// FoldEvents builds a history from events numbered 1, 2, 3… in order, as
// if each was stored and accepted: for tests and benchmarks.
func FoldEvents(scope events.Scope, evs []*events.Event) (*History, []*Skip) {
	h := NewHistory(scope)
	var skips []*Skip
	for _, e := range evs {
		var s *Skip
		if errors.As(h.Apply(e), &s) {
			skips = append(skips, s)
		}
	}
	return h, skips
}
