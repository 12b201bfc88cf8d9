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
	// Err is why, when it is an error of its own: a *events.Rejection, or
	// ErrNoDeploy.
	Err error
}

func (s *Skip) Unwrap() error { return s.Err }

func (s *Skip) Error() string {
	what := "message"
	if s.Kind != "" {
		what = string(s.Kind) + " event"
	}
	id := ""
	if s.ID != "" {
		id = " (id " + s.ID + ")"
	}
	return fmt.Sprintf("skipped %s %s rev %d%s: %s", what, s.Scope, s.Revision, id, s.Reason)
}

func skip(e *events.Event, reason string) *Skip {
	return &Skip{Kind: e.Kind, Scope: e.Scope, Revision: e.Revision, ID: e.ID, Reason: reason}
}
