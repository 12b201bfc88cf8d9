package change

import (
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The builders of the traffic changes: pause, resume, maintenance on and
// off. Balancers act on them through the agents' reports, so each needs a
// deployed scope (a scope no agent serves has no balancer to pause), and
// a resume or an "off" needs a standing pause or page: the fold would skip
// either, and the operator would believe something changed.

// Pause holds the scope's new requests, each for at most max. A pause of a
// paused scope replaces its max for the requests that arrive after it.
func Pause(scope events.Scope, max time.Duration, reason string) (Builder, error) {
	p := &events.Paused{Max: events.Duration(max), Reason: reason}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		if err := RequireDeployed(scope, h); err != nil {
			return nil, err
		}
		return p, nil
	}, nil
}

// Resume releases the held requests of a paused scope.
func Resume(scope events.Scope) Builder {
	return func(h *projector.History) (events.Payload, error) {
		if h.State().Paused == nil {
			return nil, refusef("", "%s is not paused: nothing to resume ('hoist status %s' shows a pause); nothing was published", scope, scope)
		}
		return &events.Resumed{}, nil
	}
}

// MaintenanceOn answers the scope's requests with a page that shows
// message. Putting it up again replaces the message.
func MaintenanceOn(scope events.Scope, message string) (Builder, error) {
	m := &events.MaintenanceOn{Message: message}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return func(h *projector.History) (events.Payload, error) {
		if err := RequireDeployed(scope, h); err != nil {
			return nil, err
		}
		return m, nil
	}, nil
}

// MaintenanceOff ends the scope's maintenance page.
func MaintenanceOff(scope events.Scope) Builder {
	return func(h *projector.History) (events.Payload, error) {
		if h.State().Maintenance == nil {
			return nil, refusef("", "%s has no maintenance page up: nothing to turn off; nothing was published", scope)
		}
		return &events.MaintenanceOff{}, nil
	}
}
