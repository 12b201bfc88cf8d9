package change

import (
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The builders of the changes that depend on the scope's current state.
// Each refuses what the fold would not apply, before anything is sent.

// RequireDeployed refuses a change to a scope that has no deploy yet.
func RequireDeployed(scope events.Scope, h *projector.History) error {
	if h.State().Spec == nil {
		return refusef("", "%s has never been deployed: deploy it first (hoist deploy %s --image IMAGE); nothing was published", scope, scope)
	}
	return nil
}

// Scale sets the number of replicas. The count is checked at once.
func Scale(scope events.Scope, n int) (Builder, error) {
	if err := events.ValidateReplicas(n); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		if err := RequireDeployed(scope, h); err != nil {
			return nil, err
		}
		return &events.Scaled{Replicas: n}, nil
	}, nil
}

// Env sets and unsets variables. The change is checked at once.
func Env(scope events.Scope, set map[string]string, unset []string) (Builder, error) {
	change := &events.EnvChanged{Set: set, Unset: unset}
	if err := change.Validate(); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		if err := RequireDeployed(scope, h); err != nil {
			return nil, err
		}
		return change, nil
	}, nil
}

// Remove stops every replica and keeps the spec.
func Remove(scope events.Scope) Builder {
	return func(h *projector.History) (events.Payload, error) {
		if err := RequireDeployed(scope, h); err != nil {
			return nil, err
		}
		return &events.Removed{}, nil
	}
}

// Rollback restores the spec as it was after revision to; 0 means the
// latest earlier revision whose spec differs from the current one.
func Rollback(scope events.Scope, to uint64) Builder {
	return func(h *projector.History) (events.Payload, error) {
		if err := RequireDeployed(scope, h); err != nil {
			return nil, err
		}
		if to == 0 {
			prev, ok := h.PreviousRevision()
			if !ok {
				return nil, refusef("to", "%s: no earlier revision has a different spec to roll back to; nothing was published", scope)
			}
			return &events.RolledBack{To: prev}, nil
		}
		head := h.Revision()
		switch {
		case to > head:
			return nil, refusef("to", "%s has revisions 1-%d: there is no revision %d to roll back to; nothing was published", scope, head, to)
		case to == head:
			return nil, refusef("to", "%s: revision %d is the head already; roll back to an earlier one ('hoist log %s'); nothing was published", scope, to, scope)
		}
		st, err := h.At(to)
		switch {
		case err != nil:
			return nil, refusef("to", "%s: %v; nothing was published", scope, err)
		case st.Spec == nil:
			return nil, refusef("to", "%s: revision %d has no deployed spec to restore; nothing was published", scope, to)
		case st.Removed:
			return nil, refusef("to", "%s: revision %d is a removal; use 'hoist remove %s' instead; nothing was published", scope, to, scope)
		}
		return &events.RolledBack{To: to}, nil
	}
}

// Deploy publishes a new spec: apply changes the current one (or, on a
// first deploy, a spec of 1 replica). The spec a first deploy would
// publish is checked at once, so bad input is refused before any read.
func Deploy(apply func(*events.Spec)) (Builder, *events.Spec, error) {
	first := &events.Spec{Replicas: 1}
	apply(first)
	if err := first.Validate(); err != nil {
		return nil, nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		spec := first
		if cur := h.State().Spec; cur != nil {
			spec = cur.Clone()
			apply(spec)
		}
		return &events.Deployed{Spec: *spec}, nil
	}, first, nil
}
