package deploy

import (
	"errors"
	"fmt"

	"github.com/hoist-dev/hoist/events"
)

// Errors of a reconcile, checked with errors.Is.
var (
	// ErrNoDesiredState: the Desired has no spec and is not Removed, so
	// nothing is known about what should run and nothing was changed.
	ErrNoDesiredState = errors.New("no desired state")
	// ErrUnhealthy: a new replica did not pass its health check in time.
	ErrUnhealthy = errors.New("not healthy")
	// ErrExited: a new replica stopped running before it was healthy.
	ErrExited = errors.New("stopped before it was healthy")
)

// RolloutError says which new replica failed a rollout, and why. The old
// replicas it was to replace keep running.
type RolloutError struct {
	Scope    events.Scope
	Revision uint64
	Index    int
	SpecHash string
	Err      error
}

func (e *RolloutError) Error() string {
	return fmt.Sprintf("replica %d of %s (rev %d) %v", e.Index, e.Scope, e.Revision, e.Err)
}

func (e *RolloutError) Unwrap() error { return e.Err }
