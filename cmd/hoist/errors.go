package main

import (
	"errors"
	"fmt"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// exitCode maps an error to hoist's exit codes.
func exitCode(err error) int {
	var (
		usage    *usageError
		conflict *store.ConflictError
		explicit *exitErr
	)
	switch {
	case errors.As(err, &explicit):
		return explicit.code
	case errors.As(err, &usage), errors.Is(err, events.ErrInvalid), errors.Is(err, events.ErrEventTooLarge):
		return exitUsage
	case errors.As(err, &conflict):
		return exitConflict
	}
	return exitFailure
}

// errorMessage turns an error into one line an operator can act on, not a
// stack of wrapped context.
func errorMessage(err error) string {
	var unreachable *store.UnreachableError
	if errors.As(err, &unreachable) {
		return fmt.Sprintf("cannot reach NATS at %s (%v).\n"+
			"  Start a local one with 'hoist dev' (or 'hoist server'), or point hoist at yours with HOIST_NATS_URL or --nats-url.",
			unreachable.URL, rootCause(unreachable.Err))
	}
	if errors.Is(err, store.ErrServerTooOld) {
		return err.Error() + ".\n  Use 'hoist server', or nats-server " + store.MinServerVersion + " or newer."
	}
	return err.Error()
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
