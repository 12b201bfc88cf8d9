package events

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Traffic kinds change what balancers do with a scope's requests, not
// what runs: they are config kinds so that every balancer does the same,
// and the scope's history says who paused it and why.
const (
	// KindPaused makes balancers hold the scope's new requests (e.g. while
	// a migration runs) until KindResumed, each for at most Max.
	KindPaused  Kind = "paused"
	KindResumed Kind = "resumed"
	// KindMaintenanceOn makes balancers answer the scope's requests with a
	// 503 page that shows Message, until KindMaintenanceOff.
	KindMaintenanceOn  Kind = "maintenance_on"
	KindMaintenanceOff Kind = "maintenance_off"
)

// Limits of pauses and maintenance pages, and the Max of a pause that
// names none.
const (
	MinPauseMax           = 100 * time.Millisecond
	MaxPauseMax           = time.Hour
	DefaultPauseMax       = 30 * time.Second
	MaxMaintenanceMessage = 1024
)

// Paused holds the scope's new requests.
type Paused struct {
	// Max is how long a balancer holds one request; past it the request
	// is answered 503 with Retry-After.
	Max    Duration `json:"max"`
	Reason string   `json:"reason,omitempty"`
}

// Resumed releases held requests, in the order they came.
type Resumed struct{}

// MaintenanceOn answers the scope's requests with a maintenance page.
type MaintenanceOn struct {
	Message string `json:"message,omitempty"`
}

// MaintenanceOff ends the maintenance page.
type MaintenanceOff struct{}

func (Paused) Kind() Kind         { return KindPaused }
func (Resumed) Kind() Kind        { return KindResumed }
func (MaintenanceOn) Kind() Kind  { return KindMaintenanceOn }
func (MaintenanceOff) Kind() Kind { return KindMaintenanceOff }

func (p *Paused) Validate() error {
	if m := time.Duration(p.Max); m < MinPauseMax || m > MaxPauseMax {
		return &FieldError{Field: "max", Problem: fmt.Sprintf("is %s (want %s-%s)", m, MinPauseMax, MaxPauseMax)}
	}
	if len(p.Reason) > 256 || hasControl(p.Reason) {
		return &FieldError{Field: "reason", Problem: "must be at most 256 printable characters"}
	}
	return nil
}

func (*Resumed) Validate() error { return nil }

func (m *MaintenanceOn) Validate() error {
	if len(m.Message) > MaxMaintenanceMessage || !utf8.ValidString(m.Message) {
		return &FieldError{Field: "message", Problem: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxMaintenanceMessage)}
	}
	for _, c := range m.Message {
		if (c < ' ' && c != '\n' && c != '\t') || c == 0x7f {
			return &FieldError{Field: "message", Problem: fmt.Sprintf("has the control character %q", c)}
		}
	}
	return nil
}

func (*MaintenanceOff) Validate() error { return nil }

// Traffic is what balancers do with a scope's requests at a revision. The
// agents fold it from the scope's history and hand it on in every backends
// report, so that a balancer reads no config event, and so no env value.
type Traffic struct {
	Canary      *CanaryTraffic `json:"canary,omitempty"`
	Paused      *Pause         `json:"paused,omitempty"`
	Maintenance *Maintenance   `json:"maintenance,omitempty"`
}

// CanaryTraffic is a running canary's split.
type CanaryTraffic struct {
	// ID is the revision that started the canary: it names the canary in
	// sticky cookies and in the balancers' request counts.
	ID     uint64 `json:"id"`
	Share  int    `json:"share"`
	Sticky bool   `json:"sticky,omitempty"`
}

// Pause is a scope's standing pause.
type Pause struct {
	Since time.Time `json:"since"`
	Max   Duration  `json:"max"`
}

// Maintenance is a scope's standing maintenance page.
type Maintenance struct {
	Since   time.Time `json:"since"`
	Message string    `json:"message,omitempty"`
}

// IsZero reports whether t asks nothing of balancers.
func (t *Traffic) IsZero() bool {
	return t == nil || (t.Canary == nil && t.Paused == nil && t.Maintenance == nil)
}

// Validate checks a traffic policy from a report.
func (t *Traffic) Validate() error {
	if t == nil {
		return nil
	}
	if c := t.Canary; c != nil {
		if c.ID == 0 {
			return &FieldError{Field: "traffic.canary.id", Problem: "must be the revision that started the canary"}
		}
		if err := ValidateShare(c.Share); err != nil {
			return err
		}
	}
	if p := t.Paused; p != nil {
		if err := (&Paused{Max: p.Max}).Validate(); err != nil {
			return err
		}
	}
	if m := t.Maintenance; m != nil {
		if err := (&MaintenanceOn{Message: m.Message}).Validate(); err != nil {
			return err
		}
	}
	return nil
}
