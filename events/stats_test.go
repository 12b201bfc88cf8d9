package events_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

func goodStats() *events.RequestStats {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	side := func(req, errs uint64) events.SideStats {
		l := make([]uint64, events.LatencyBuckets)
		l[5] = req
		return events.SideStats{Requests: req, Errors: errs, Latency: l}
	}
	return &events.RequestStats{Balancer: "lb-1", Boot: "b00t", Time: at, CanaryID: 7, Since: at.Add(-time.Minute),
		Stable: side(900, 1), Canary: side(100, 5)}
}

func TestLatencyBounds(t *testing.T) {
	b := events.LatencyBounds
	if b[0] != time.Millisecond || b[len(b)-1] < time.Minute {
		t.Fatalf("bounds run %s..%s, want 1ms to past 60s", b[0], b[len(b)-1])
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] || float64(b[i]) > 1.3*float64(b[i-1]) {
			t.Fatalf("bound %d (%s) after %s: want rising by at most 30%%", i, b[i], b[i-1])
		}
	}
}

func TestRequestStatsValidate(t *testing.T) {
	if err := goodStats().Validate(); err != nil {
		t.Fatalf("good stats: %v", err)
	}
	bad := map[string]func(s *events.RequestStats){
		"no balancer":      func(s *events.RequestStats) { s.Balancer = "" },
		"balancer token":   func(s *events.RequestStats) { s.Balancer = "lb.1" },
		"no boot":          func(s *events.RequestStats) { s.Boot = "" },
		"control in boot":  func(s *events.RequestStats) { s.Boot = "a\nb" },
		"no canary":        func(s *events.RequestStats) { s.CanaryID = 0 },
		"no time":          func(s *events.RequestStats) { s.Time = time.Time{} },
		"since after time": func(s *events.RequestStats) { s.Since = s.Time.Add(time.Second) },
		"short histogram":  func(s *events.RequestStats) { s.Canary.Latency = s.Canary.Latency[:3] },
		"errors > reqs":    func(s *events.RequestStats) { s.Canary.Errors = 101 },
		"timed > reqs":     func(s *events.RequestStats) { s.Stable.Latency[0] = 1 },
		"overflow":         func(s *events.RequestStats) { s.Stable.Latency[0], s.Stable.Latency[1] = ^uint64(0), 2 },
	}
	for name, mutate := range bad {
		s := goodStats()
		mutate(s)
		if err := s.Validate(); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want an invalid-field error", name, err)
		}
	}
}

func TestDecodeRequestStats(t *testing.T) {
	b, err := json.Marshal(goodStats())
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.DecodeRequestStats(b)
	if err != nil || s.Canary.Requests != 100 || s.Balancer != "lb-1" {
		t.Fatalf("decode = %+v, %v", s, err)
	}
	for _, in := range []string{``, `{`, `[]`, `{"balancer":"lb-1"}`} {
		if _, err := events.DecodeRequestStats([]byte(in)); !errors.Is(err, events.ErrMalformed) {
			t.Errorf("decode %q = %v, want ErrMalformed", in, err)
		}
	}
}

func TestInterpretStats(t *testing.T) {
	b, _ := json.Marshal(goodStats())
	r := events.Interpret(events.Message{Subject: "hoist.stats.acme.prod.web.lb-1", Data: b, Time: goodStats().Time})
	if r.Err != nil || r.Stats == nil || r.Balancer != "lb-1" {
		t.Fatalf("interpret = %+v", r)
	}
	r = events.Interpret(events.Message{Subject: "hoist.stats.acme.prod.web.lb-2", Data: b, Time: goodStats().Time})
	if !errors.Is(r.Err, events.ErrDisagrees) || r.Stats != nil {
		t.Fatalf("another balancer's subject: %v, want ErrDisagrees and no stats", r.Err)
	}
}

// FuzzDecodeRequestStats: decoding never panics, and what it accepts is
// valid and survives a round trip.
func FuzzDecodeRequestStats(f *testing.F) {
	b, _ := json.Marshal(goodStats())
	f.Add(b)
	f.Add([]byte(`{"balancer":"lb","boot":"x","canary_id":1,"time":"2026-01-01T00:00:00Z","since":"2026-01-01T00:00:00Z","stable":{"latency":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := events.DecodeRequestStats(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted invalid stats: %v", err)
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.DecodeRequestStats(again); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
