package events

import (
	"fmt"
	"time"
)

// Canary kinds. A canary runs a new spec beside the scope's stable one and
// balancers send it a share of new requests; it ends promoted (its spec
// becomes the scope's, rolled health-gated as a deploy is) or aborted (its
// replicas are removed). Each is a config kind, so that the scope's
// history says who started, shifted, promoted or aborted it, and on what
// figures.
const (
	// KindCanaryStarted starts a canary of a new spec. A deployer's kind.
	KindCanaryStarted Kind = "canary_started"
	// KindCanaryShifted changes the canary's share. A deployer's kind, and
	// an agent's when the canary's analysis made the step.
	KindCanaryShifted Kind = "canary_shifted"
	// KindCanaryPromoted makes the canary's spec the scope's.
	KindCanaryPromoted Kind = "canary_promoted"
	// KindCanaryAborted removes the canary.
	KindCanaryAborted Kind = "canary_aborted"
)

// Limits of a canary.
const (
	MaxCanarySteps     = 20
	MinCanaryInterval  = time.Second
	MaxCanaryInterval  = 24 * time.Hour
	MaxCanaryRequests  = 1_000_000_000
	maxCanaryReasonLen = 512
)

// CanaryStarted starts a canary of Spec beside the scope's stable spec.
type CanaryStarted struct {
	Spec Spec `json:"spec"`
	// Share is the percentage (0-100) of new requests balancers send to
	// the canary's replicas.
	Share int `json:"share"`
	// Replicas is how many canary replicas each serving node runs.
	Replicas int `json:"replicas"`
	// Sticky keeps a client on the side it first reached, with a cookie.
	Sticky bool `json:"sticky,omitempty"`
	// Auto, when set, lets the analysis advance or abort the canary.
	Auto *Analysis `json:"auto,omitempty"`
}

// Analysis is how a canary advances by itself: every Interval, if the
// canary served at least MinRequests since its last step and stayed within
// MaxErrorRate and MaxP99, its share goes to the next of Steps; after the
// last step it is promoted. Over a limit it is aborted.
type Analysis struct {
	Steps    []int    `json:"steps"`
	Interval Duration `json:"interval"`
	// MaxErrorRate is the highest fraction (0-1) of 5xx answers allowed.
	MaxErrorRate float64 `json:"max_error_rate"`
	// MaxP99 is the highest 99th-percentile latency allowed; 0 checks none.
	MaxP99      Duration `json:"max_p99,omitempty"`
	MinRequests int      `json:"min_requests"`
}

// DefaultAnalysis is the policy an analysis has where it names nothing
// else: through 10, 25, 50 and 100%, a minute each, aborted over 1% of
// 5xx, deciding once the canary served 100 requests at its step.
func DefaultAnalysis() Analysis {
	return Analysis{Steps: []int{10, 25, 50, 100}, Interval: Duration(time.Minute), MaxErrorRate: 0.01, MinRequests: 100}
}

// Figures are what the analysis saw of a canary over one window, summed
// over every balancer that reported it.
type Figures struct {
	Requests  uint64   `json:"requests"`
	Errors    uint64   `json:"errors"` // 5xx answers
	P99       Duration `json:"p99"`
	Window    Duration `json:"window"`
	Balancers int      `json:"balancers"`
}

// ErrorRate is the fraction of 5xx answers, 0 when nothing was served.
func (f *Figures) ErrorRate() float64 {
	if f.Requests == 0 {
		return 0
	}
	return float64(f.Errors) / float64(f.Requests)
}

// String writes the figures as an operator reads them:
// "612 requests, 5xx 4.8%, p99 12ms over 1m0s from 2 balancers".
func (f *Figures) String() string {
	return fmt.Sprintf("%d requests, 5xx %.1f%%, p99 %s %s", f.Requests, 100*f.ErrorRate(), roundDuration(time.Duration(f.P99)), f.Span())
}

// Span writes where the figures come from: "over 1m0s from 2 balancers".
func (f *Figures) Span() string {
	b := "balancers"
	if f.Balancers == 1 {
		b = "balancer"
	}
	return fmt.Sprintf("over %s from %d %s", roundDuration(time.Duration(f.Window)), f.Balancers, b)
}

// roundDuration keeps two or three significant digits: 6.3s, 12ms, 990µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// CanaryShifted sets the canary's share.
//
// With Auto set, the analysis (re)starts with that policy from Share. With
// Automatic set, the analysis made this step (Reason and Figures say why)
// and goes on. Otherwise it is a hand's shift, and the analysis stops.
type CanaryShifted struct {
	Share     int       `json:"share"`
	Auto      *Analysis `json:"auto,omitempty"`
	Automatic bool      `json:"automatic,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Figures   *Figures  `json:"figures,omitempty"`
}

// CanaryPromoted makes the canary's spec the scope's spec.
type CanaryPromoted struct {
	Automatic bool     `json:"automatic,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Figures   *Figures `json:"figures,omitempty"`
}

// CanaryAborted removes the canary; the stable spec serves everything.
type CanaryAborted struct {
	Automatic bool     `json:"automatic,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Figures   *Figures `json:"figures,omitempty"`
}

func (CanaryStarted) Kind() Kind  { return KindCanaryStarted }
func (CanaryShifted) Kind() Kind  { return KindCanaryShifted }
func (CanaryPromoted) Kind() Kind { return KindCanaryPromoted }
func (CanaryAborted) Kind() Kind  { return KindCanaryAborted }

// ValidateShare checks a canary share: a percentage.
func ValidateShare(share int) error {
	if share < 0 || share > 100 {
		return &FieldError{Field: "share", Problem: fmt.Sprintf("is %d (want 0-100, a percentage of new requests)", share)}
	}
	return nil
}

func (c *CanaryStarted) Validate() error {
	if err := c.Spec.Validate(); err != nil {
		return err
	}
	return c.ValidateSplit()
}

// ValidateSplit checks what a canary adds to its spec: share, replicas
// and analysis.
func (c *CanaryStarted) ValidateSplit() error {
	if err := ValidateShare(c.Share); err != nil {
		return err
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return &FieldError{Field: "replicas", Problem: fmt.Sprintf("is %d (want 1-%d canary replicas per node)", c.Replicas, MaxReplicas)}
	}
	if c.Auto != nil {
		return c.Auto.Validate()
	}
	return nil
}

// Validate checks an analysis policy.
func (a *Analysis) Validate() error {
	if len(a.Steps) == 0 || len(a.Steps) > MaxCanarySteps {
		return &FieldError{Field: "steps", Problem: fmt.Sprintf("has %d steps (want 1-%d)", len(a.Steps), MaxCanarySteps)}
	}
	prev := 0
	for _, s := range a.Steps {
		if s <= prev || s > 100 {
			return &FieldError{Field: "steps", Problem: fmt.Sprintf("%v must rise, each a share of 1-100", a.Steps)}
		}
		prev = s
	}
	if iv := time.Duration(a.Interval); iv < MinCanaryInterval || iv > MaxCanaryInterval {
		return &FieldError{Field: "interval", Problem: fmt.Sprintf("is %s (want %s-%s)", iv, MinCanaryInterval, MaxCanaryInterval)}
	}
	if !(a.MaxErrorRate >= 0 && a.MaxErrorRate <= 1) { // also refuses NaN
		return &FieldError{Field: "max_error_rate", Problem: fmt.Sprintf("is %v (want a fraction 0-1)", a.MaxErrorRate)}
	}
	if a.MaxP99 < 0 || time.Duration(a.MaxP99) > time.Hour {
		return &FieldError{Field: "max_p99", Problem: fmt.Sprintf("is %s (want 0-1h; 0 checks no latency)", time.Duration(a.MaxP99))}
	}
	if a.MinRequests < 0 || a.MinRequests > MaxCanaryRequests {
		return &FieldError{Field: "min_requests", Problem: fmt.Sprintf("is %d (want 0-%d)", a.MinRequests, MaxCanaryRequests)}
	}
	return nil
}

// Next is the step after share, and false when share is at or past the
// last step (the canary is promoted next).
func (a *Analysis) Next(share int) (int, bool) {
	for _, s := range a.Steps {
		if s > share {
			return s, true
		}
	}
	return 0, false
}

func validateVerdict(automatic bool, reason string, f *Figures) error {
	if len(reason) > maxCanaryReasonLen || hasControl(reason) {
		return &FieldError{Field: "reason", Problem: fmt.Sprintf("must be at most %d printable characters", maxCanaryReasonLen)}
	}
	if automatic && f == nil {
		return &FieldError{Field: "figures", Problem: "are missing: an automatic step names the figures it was based on"}
	}
	if f != nil && (f.Errors > f.Requests || f.P99 < 0 || f.Window < 0 || f.Balancers < 0) {
		return &FieldError{Field: "figures", Problem: "count more errors than requests, or a negative time"}
	}
	return nil
}

func (c *CanaryShifted) Validate() error {
	if err := ValidateShare(c.Share); err != nil {
		return err
	}
	if c.Auto != nil && c.Automatic {
		return &FieldError{Field: "auto", Problem: "is set on an automatic step: only a hand sets the policy"}
	}
	if c.Auto != nil {
		if err := c.Auto.Validate(); err != nil {
			return err
		}
	}
	return validateVerdict(c.Automatic, c.Reason, c.Figures)
}

func (c *CanaryPromoted) Validate() error { return validateVerdict(c.Automatic, c.Reason, c.Figures) }
func (c *CanaryAborted) Validate() error  { return validateVerdict(c.Automatic, c.Reason, c.Figures) }

func hasControl(s string) bool {
	for _, c := range s {
		if c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
