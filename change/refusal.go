package change

import (
	"errors"
	"fmt"

	"github.com/hoist-dev/hoist/events"
)

// Refusal is input that cannot be published: nothing was. Field names the
// input at fault when one is ("replicas", "to", "image"), for front ends
// that point at it (the API's 400 answers).
type Refusal struct {
	Field string
	Msg   string
	// Err is the cause the message wraps with %w (projector.ErrNoDeploy,
	// say), for errors.Is and errors.As.
	Err error
}

func (r *Refusal) Error() string { return r.Msg }
func (r *Refusal) Unwrap() error { return r.Err }

// Is makes errors.Is(err, events.ErrInvalid) true, so every front end maps
// a refusal as it maps other bad input.
func (r *Refusal) Is(target error) bool { return target == events.ErrInvalid }

func refusef(field, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Refusal{Field: field, Msg: err.Error(), Err: errors.Unwrap(err)}
}
