package deploy

import (
	"context"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Runtime runs replicas on one node. Every method sees and touches only the
// replicas this node's runtime labelled as its own.
type Runtime interface {
	// List returns every replica of this node, in any state.
	List(ctx context.Context) ([]Replica, error)
	// Start creates and starts one replica and returns it as observed.
	Start(ctx context.Context, rs ReplicaSpec) (Replica, error)
	// Stop asks a replica to stop, and kills it after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove deletes a stopped replica and what the runtime keeps for it.
	Remove(ctx context.Context, id string) error
	// Tail returns up to n of a replica's last lines of output (stdout
	// and stderr as they came), oldest first; nil from a runtime that
	// keeps none. Removing a replica may remove its output with it (a
	// Docker container's logs), so the reconciler reads the last lines of
	// one that exited first: an operator then sees why it died in the
	// agent's log and in `hoist status SCOPE`.
	Tail(ctx context.Context, id string, n int) ([]string, error)
	// Health reports the runtime's own view of a replica's health.
	Health(ctx context.Context, id string) (Health, error)
	// Watch streams hints that replicas changed behind the reconciler's
	// back, until ctx ends; then the channel is closed.
	Watch(ctx context.Context) <-chan Change
}

// Health is a runtime's verdict on one replica.
type Health struct {
	State ReplicaState
	// Check is the Docker HEALTHCHECK status ("starting", "healthy",
	// "unhealthy"), or "" when the replica has no such check.
	Check  string
	Detail string // exit code, last check output
}

// Change says that a replica changed outside a reconcile: it died, was
// removed, or its health check flipped.
type Change struct {
	ID     string
	Scope  events.Scope
	Index  int
	Action string // e.g. "die", "destroy", "health_status: unhealthy", "exit"
}
