package projector

import (
	"errors"
	"fmt"

	"github.com/hoist-dev/hoist/events"
)

// Errors a fold reports.
var (
	ErrNoRevision = errors.New("no such revision")
	// ErrNoDeploy rejects a change to a scope that was never deployed.
	ErrNoDeploy = errors.New("the scope has no deploy yet")
)

// Skip says which event a fold passed over, and why.
type Skip struct {
	Kind     events.Kind
	Scope    events.Scope
	Revision uint64
	ID       string
	Reason   string
}

func (s *Skip) Error() string {
	return fmt.Sprintf("skipped %s event %s rev %d (id %s): %s", s.Kind, s.Scope, s.Revision, s.ID, s.Reason)
}

func skip(e *events.Event, reason string) *Skip {
	return &Skip{Kind: e.Kind, Scope: e.Scope, Revision: e.Revision, ID: e.ID, Reason: reason}
}
