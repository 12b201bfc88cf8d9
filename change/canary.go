package change

import (
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The builders of a canary's changes: start, shift, promote, abort. Each
// refuses, with what to do instead, what the fold would skip.

// CanaryOptions are a canary's split, beside the spec it runs.
type CanaryOptions struct {
	Share    int
	Replicas int // per serving node
	Sticky   bool
	Auto     *events.Analysis
}

// Canary starts a canary of the spec a deploy with apply would publish:
// options left out keep the stable spec's values. The share, count and
// the spec a first deploy would make are checked at once.
func Canary(scope events.Scope, apply func(*events.Spec), o CanaryOptions) (Builder, error) {
	first := &events.Spec{Replicas: 1}
	apply(first)
	if first.Image == "" && len(first.Command) == 0 {
		first.Image = "running" // the stable spec's, known once connected
	}
	check := &events.CanaryStarted{Spec: *first, Share: o.Share, Replicas: o.Replicas, Sticky: o.Sticky, Auto: o.Auto}
	if err := check.Validate(); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		st := h.State()
		switch {
		case st.Spec == nil:
			return nil, refusef("", "%s has never been deployed: a canary runs beside a deployed spec; deploy it first (hoist deploy %s --image IMAGE); nothing was published", scope, scope)
		case st.Removed:
			return nil, refusef("", "%s is removed: a canary runs beside a deployed spec; deploy it again first; nothing was published", scope)
		case st.Canary != nil:
			return nil, refusef("", "%s: a canary is running (revision %d, %s at %d%%): promote it (hoist promote %s) or abort it (hoist abort %s) first; nothing was published",
				scope, st.Canary.ID, specName(st.Canary.Spec), st.Canary.Share, scope, scope)
		}
		spec := st.Spec.Clone()
		apply(spec)
		return &events.CanaryStarted{Spec: *spec, Share: o.Share, Replicas: o.Replicas, Sticky: o.Sticky, Auto: o.Auto}, nil
	}, nil
}

// Shift sets the running canary's share (and, with shift.Auto, its
// analysis). The share is checked at once.
func Shift(scope events.Scope, shift *events.CanaryShifted) (Builder, error) {
	if err := shift.Validate(); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		if err := requireCanary(scope, h); err != nil {
			return nil, err
		}
		return shift, nil
	}, nil
}

// Promote makes the running canary's spec the scope's.
func Promote(scope events.Scope) Builder {
	return func(h *projector.History) (events.Payload, error) {
		if err := requireCanary(scope, h); err != nil {
			return nil, err
		}
		return &events.CanaryPromoted{}, nil
	}
}

// Abort removes the running canary. The reason is checked at once.
func Abort(scope events.Scope, reason string) (Builder, error) {
	abort := &events.CanaryAborted{Reason: reason}
	if err := abort.Validate(); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		if err := requireCanary(scope, h); err != nil {
			return nil, err
		}
		return abort, nil
	}, nil
}

// requireCanary refuses a change of a canary that does not run.
func requireCanary(scope events.Scope, h *projector.History) error {
	if err := RequireDeployed(scope, h); err != nil {
		return err
	}
	if h.State().Canary == nil {
		return refusef("", "%s: %v: start one with 'hoist deploy %s --image IMAGE --canary 10'; nothing was published", scope, projector.ErrNoCanary, scope)
	}
	return nil
}

// specName is what a spec runs, in a few words: its image, or its command.
func specName(s *events.Spec) string {
	if s.Image != "" {
		return s.Image
	}
	if len(s.Command) > 0 {
		return s.Command[0]
	}
	return "a spec"
}
