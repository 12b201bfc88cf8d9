package projector

import (
	"errors"
	"fmt"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// ErrNoCanary rejects a shift, promotion or abort of a scope that runs no
// canary.
var ErrNoCanary = errors.New("the scope runs no canary")

// Canary is a scope's running canary: a second spec beside the stable one,
// sent Share percent of new requests.
//
// A scale or an env change applies to the stable spec only; a deploy, a
// rollback or a removal ends the canary, as an abort does.
type Canary struct {
	// ID is the revision that started the canary.
	ID uint64
	// Spec is shared with the history: never modify it, Clone it.
	Spec     *events.Spec
	Share    int
	Replicas int
	Sticky   bool
	// Auto is the analysis policy; nil when the share moves only by hand.
	Auto *events.Analysis
	// Since is when the share last changed, and SinceRevision the revision
	// that changed it: the analysis counts requests from there.
	Since         time.Time
	SinceRevision uint64
}

// Traffic is what balancers are to do with the scope's requests.
func (s State) Traffic() *events.Traffic {
	t := &events.Traffic{Paused: s.Paused, Maintenance: s.Maintenance}
	if c := s.Canary; c != nil {
		t.Canary = &events.CanaryTraffic{ID: c.ID, Share: c.Share, Sticky: c.Sticky}
	}
	if t.IsZero() {
		return nil
	}
	return t
}

// nextTraffic checks a canary or traffic event against the state and
// returns the snapshot it leads to: the stable spec, except that a
// promotion makes the canary's spec the scope's.
func (h *History) nextTraffic(e *events.Event) (snapshot, error) {
	cur := snapshot{spec: h.state.Spec, removed: h.state.Removed}
	c := h.state.Canary
	needCanary := func(automatic bool) error {
		if c == nil {
			return ErrNoCanary
		}
		if automatic && c.Auto == nil {
			return fmt.Errorf("is an automatic step, but the canary of revision %d has no analysis (a hand shifted it since)", c.ID)
		}
		return nil
	}
	switch d := e.Data.(type) {
	case *events.CanaryStarted:
		if cur.spec == nil || cur.removed {
			return cur, fmt.Errorf("%w: a canary runs beside a deployed spec", ErrNoDeploy)
		}
		if c != nil {
			return cur, fmt.Errorf("starts a canary while the canary of revision %d runs: promote or abort it first", c.ID)
		}
		if err := h.ring.checkSealedTo(&d.Spec); err != nil {
			return cur, err
		}
	case *events.CanaryShifted:
		return cur, needCanary(d.Automatic)
	case *events.CanaryPromoted:
		if err := needCanary(d.Automatic); err != nil {
			return cur, err
		}
		return snapshot{spec: c.Spec, removed: cur.removed}, nil
	case *events.CanaryAborted:
		return cur, needCanary(d.Automatic)
	case *events.Resumed:
		if h.state.Paused == nil {
			return cur, errors.New("resumes a scope that is not paused")
		}
	case *events.MaintenanceOff:
		if h.state.Maintenance == nil {
			return cur, errors.New("ends a maintenance page that is not up")
		}
	case *events.Paused, *events.MaintenanceOn:
	default:
		return cur, fmt.Errorf("is a %s event, not a traffic change", e.Kind)
	}
	return cur, nil
}

// applyTraffic changes the canary, pause and maintenance standing of the
// state for an event applied at rev.
func (h *History) applyTraffic(e *events.Event, rev uint64) {
	st := &h.state
	switch d := e.Data.(type) {
	case *events.Deployed, *events.RolledBack, *events.Removed, *events.CanaryPromoted, *events.CanaryAborted:
		st.Canary = nil
	case *events.CanaryStarted:
		st.Canary = &Canary{ID: rev, Spec: d.Spec.Clone(), Share: d.Share, Replicas: d.Replicas, Sticky: d.Sticky,
			Auto: d.Auto, Since: e.Time, SinceRevision: rev}
	case *events.CanaryShifted:
		c := *st.Canary
		c.Share, c.Since, c.SinceRevision = d.Share, e.Time, rev
		switch {
		case d.Auto != nil:
			c.Auto = d.Auto
		case !d.Automatic:
			c.Auto = nil
		}
		st.Canary = &c
	case *events.Paused:
		st.Paused = &events.Pause{Since: e.Time, Max: d.Max}
	case *events.Resumed:
		st.Paused = nil
	case *events.MaintenanceOn:
		st.Maintenance = &events.Maintenance{Since: e.Time, Message: d.Message}
	case *events.MaintenanceOff:
		st.Maintenance = nil
	}
}
