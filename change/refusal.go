package change

import (
	"fmt"

	"github.com/hoist-dev/hoist/events"
)

// Refusal is input that cannot be published: nothing was. Field names the
// input at fault when one is ("replicas", "to", "image"), for front ends
// that point at it (the API's 400 answers).
type Refusal struct {
	Field string
	Msg   string
}

func (r *Refusal) Error() string { return r.Msg }

// Is makes errors.Is(err, events.ErrInvalid) true, so every front end maps
// a refusal as it maps other bad input.
func (r *Refusal) Is(target error) bool { return target == events.ErrInvalid }

func refusef(field, format string, args ...any) error {
	return &Refusal{Field: field, Msg: fmt.Sprintf(format, args...)}
}
