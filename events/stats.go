package events

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Request statistics: what each balancer served of a scope that runs a
// canary, so that the canary's analysis needs no metrics system. Every few
// seconds each balancer publishes, per scope with a running canary, its
// counters since it began counting that canary, per side: requests, 5xx
// answers and a latency histogram with the fixed bounds LatencyBounds. The
// counters only grow while the balancer runs; Boot is random per start,
// so that a reader tells a restart (counters back to zero) from a delta.
//
//	HOIST_STATS    hoist.stats.<client>.<env>.<solution>.<balancer>  a short history per balancer

// StatsStream keeps the balancers' request statistics: a short history
// per scope and balancer, dropped after StatsMaxAge.
const StatsStream = "HOIST_STATS"

// Limits of the stats stream.
const (
	// StatsHistory is how many statistics are kept per scope and
	// balancer: at the default interval of 2s, about two minutes.
	StatsHistory = 64
	// StatsMaxAge drops the statistics of balancers that went silent, and
	// of canaries long ended.
	StatsMaxAge = time.Hour
)

// LatencyBounds are the upper bounds of the latency histogram's buckets:
// 1 ms to 63 s, ten per decade (the R10 series: 1, 1.25, 1.6, 2, 2.5,
// 3.15, 4, 5, 6.3, 8), so that a p99 read from them is within 12% of the
// true value. A last bucket counts everything slower. They are part of the
// stats format: a balancer and an analysis of different versions must
// agree on them, so change them only with a new format.
var LatencyBounds = func() [49]time.Duration {
	r10 := [...]float64{1, 1.25, 1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8}
	var out [49]time.Duration
	for i := range out {
		ms := r10[i%10] * math.Pow(10, float64(i/10))
		out[i] = time.Duration(math.Round(ms*1000)) * time.Microsecond
	}
	return out
}()

// LatencyBuckets is the length of a side's histogram: one bucket per
// bound, and one for everything slower than the last.
const LatencyBuckets = len(LatencyBounds) + 1

// RequestStats is one balancer's counters of one scope's canary. The
// scope and the balancer come from the subject; Balancer must agree.
type RequestStats struct {
	Balancer string `json:"balancer"`
	// Boot is random per balancer start: counters of one boot only grow.
	Boot string `json:"boot"`
	// Time is when the counters were read.
	Time time.Time `json:"time"`
	// CanaryID is the canary counted: the revision that started it.
	CanaryID uint64 `json:"canary_id"`
	// Since is when this boot began counting the canary: nothing it served
	// before is in the counters.
	Since  time.Time `json:"since"`
	Stable SideStats `json:"stable"`
	Canary SideStats `json:"canary"`
}

// SideStats counts the requests one side (stable or canary) answered.
type SideStats struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"` // 5xx answers
	// Latency counts requests by duration, in the buckets of
	// LatencyBounds (non-cumulative, LatencyBuckets long).
	Latency []uint64 `json:"latency"`
}

// maxBootLen bounds a boot id.
const maxBootLen = 64

// Validate checks a statistics message.
func (s *RequestStats) Validate() error {
	if err := ValidateBalancerName(s.Balancer); err != nil {
		return err
	}
	if s.Boot == "" || len(s.Boot) > maxBootLen || hasControl(s.Boot) {
		return &FieldError{Field: "boot", Problem: fmt.Sprintf("must be 1-%d printable characters", maxBootLen)}
	}
	if s.CanaryID == 0 {
		return &FieldError{Field: "canary_id", Problem: "is missing (the revision that started the canary)"}
	}
	if s.Time.IsZero() || s.Since.IsZero() || s.Since.After(s.Time) {
		return &FieldError{Field: "time", Problem: "and since must be set, since no later than time"}
	}
	if err := s.Stable.validate("stable"); err != nil {
		return err
	}
	return s.Canary.validate("canary")
}

func (s *SideStats) validate(side string) error {
	if len(s.Latency) != LatencyBuckets {
		return &FieldError{Field: side + ".latency", Problem: fmt.Sprintf("has %d buckets (want %d)", len(s.Latency), LatencyBuckets)}
	}
	// A balancer counts a request, then its 5xx, then its latency, and
	// reads them in the other order: a snapshot never counts more errors
	// or timed requests than requests.
	var timed uint64
	for _, n := range s.Latency {
		if timed+n < timed {
			return &FieldError{Field: side + ".latency", Problem: "overflows"}
		}
		timed += n
	}
	if s.Errors > s.Requests || timed > s.Requests {
		return &FieldError{Field: side, Problem: fmt.Sprintf("counts %d errors and %d timed requests of %d requests", s.Errors, timed, s.Requests)}
	}
	return nil
}

// ValidateBalancerName checks a balancer's name: one subject token, with
// the rules of an actor (a balancer's credential name is one).
func ValidateBalancerName(name string) error {
	var fe *FieldError
	if err := ValidateActor(name); errors.As(err, &fe) {
		return &FieldError{Field: "balancer", Problem: fe.Problem}
	} else if err != nil {
		return err
	}
	return nil
}

// DecodeRequestStats parses and validates a statistics message.
func DecodeRequestStats(b []byte) (*RequestStats, error) {
	var s RequestStats
	if err := decodeReport(b, &s, "statistics"); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, &malformedAs{what: "statistics", err: err}
	}
	return &s, nil
}

// StatsSubject is the subject of balancer's statistics for scope s.
func StatsSubject(s Scope, balancer string) string {
	return SubjectRoot + ".stats." + s.String() + "." + balancer
}

// StatsFilter matches every balancer's statistics for scope s.
func StatsFilter(s Scope) string { return SubjectRoot + ".stats." + s.String() + ".>" }
