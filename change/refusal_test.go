package change

import (
	"errors"
	"testing"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// A refusal is bad input and keeps the cause it names with %w: the fold's
// ErrNoDeploy stays visible to errors.Is through the message publish builds.
func TestRefusalWrapsItsCause(t *testing.T) {
	err := refusef("", "%s: cannot publish %s at revision %d: %w; nothing was published", "acme.prod.web", events.KindScaled, 1, projector.ErrNoDeploy)
	if !errors.Is(err, projector.ErrNoDeploy) || !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("%v: errors.Is ErrNoDeploy %v, ErrInvalid %v; want both", err, errors.Is(err, projector.ErrNoDeploy), errors.Is(err, events.ErrInvalid))
	}
	var r *Refusal
	if !errors.As(err, &r) || r.Msg != "acme.prod.web: cannot publish scaled at revision 1: the scope has no deploy yet; nothing was published" {
		t.Fatalf("refusal = %#v", r)
	}
	if plain := refusef("to", "no %s", "revision"); errors.Unwrap(plain) != nil || plain.Error() != "no revision" {
		t.Fatalf("a refusal without %%w: %v wraps %v", plain, errors.Unwrap(plain))
	}
}
