//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hoist-dev/hoist/events/store"
)

// fanResult is one system's latencies at one fan-out.
type fanResult struct {
	system     string
	n          int
	deliveries []time.Duration // every receiver of every change, from the publish call
	last       []time.Duration // per change: when the last receiver had it
	publish    []time.Duration // per change: the publish call itself (ack, flush or reply)
	roundP99   []time.Duration // p99 of the deliveries of each round
	changes    int
	incomplete int // changes some receiver had not seen by the timeout
}

// latencyRun holds what a fan-out run needs.
type latencyRun struct {
	store    *store.Store // the publisher: one connection, like the CLI
	url      string
	redis    string // "" skips Redis
	dir      string
	rounds   int
	interval time.Duration // pollers
	log      *slog.Logger
	// profile, when set, is called with the hoist system at the largest
	// fan-out once the rounds are done.
	profile func(run *latencyRun, s *system, n int) error
}

// runFanout sets up every system for n receivers and measures them in
// rounds; each round runs the systems one after the other in a rotated
// order, so that load from elsewhere on the machine spreads over all.
func (r *latencyRun) runFanout(n int, largest bool) ([]*fanResult, error) {
	var systems []*system
	defer func() {
		for _, s := range systems {
			s.close()
		}
	}()
	start := time.Now()
	hs, err := hoistSystem(r.store, r.url, r.dir, n, r.log)
	if err != nil {
		return nil, fmt.Errorf("set up hoist agents: %w", err)
	}
	systems = append(systems, hs)
	logf("  %d agents synced in %s", n, time.Since(start).Round(time.Millisecond))
	ns, err := natsSystem(r.url, n)
	if err != nil {
		return nil, fmt.Errorf("set up NATS subscribers: %w", err)
	}
	systems = append(systems, ns)
	if r.redis != "" {
		rs, err := redisSystem(r.redis, n)
		if err != nil {
			return nil, fmt.Errorf("set up Redis subscribers: %w", err)
		}
		systems = append(systems, rs)
	}
	ps, err := pollSystem(r.store, r.url, n, r.interval)
	if err != nil {
		return nil, fmt.Errorf("set up pollers: %w", err)
	}
	systems = append(systems, ps)

	results := make([]*fanResult, len(systems))
	acted := map[*system]*fanResult{}
	for i, s := range systems {
		results[i] = &fanResult{system: s.name, n: n}
		if s.acted != nil {
			acted[s] = &fanResult{system: s.actedName, n: n}
		}
	}
	seq := uint64(0)
	// A warm-up change per system, not recorded.
	for _, s := range systems {
		seq++
		if err := r.change(s, seq, &fanResult{}, &fanResult{}); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	for round := range r.rounds {
		for k := range systems {
			i := (k + round) % len(systems)
			s, res := systems[i], results[i]
			before := len(res.deliveries)
			if s.beginSlot != nil {
				s.beginSlot()
			}
			for range s.perRound {
				seq++
				if err := r.change(s, seq, res, acted[s]); err != nil {
					if s.endSlot != nil {
						s.endSlot()
					}
					return nil, fmt.Errorf("%s: %w", s.name, err)
				}
			}
			if s.endSlot != nil {
				s.endSlot()
			}
			res.roundP99 = append(res.roundP99, summarize(res.deliveries[before:]).p99)
			if a := acted[s]; a != nil {
				a.roundP99 = append(a.roundP99, summarize(a.deliveries[before:]).p99)
			}
		}
		logf("  n=%d round %d/%d done", n, round+1, r.rounds)
	}
	if largest && r.profile != nil {
		if err := r.profile(r, hs, n); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	var out []*fanResult
	for i, s := range systems {
		out = append(out, results[i])
		if a := acted[s]; a != nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// change publishes one change through s and records when each receiver
// had it (and, for systems with a later point, when each reached that).
func (r *latencyRun) change(s *system, seq uint64, res, actedRes *fanResult) error {
	target := s.expect(seq)
	done := s.tr.arm(target)
	var actedDone <-chan struct{}
	if s.acted != nil {
		actedDone = s.acted.arm(target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	got, err := s.publish(ctx, seq)
	pub := time.Since(t0)
	if err != nil {
		return err
	}
	if got != target {
		return fmt.Errorf("published %d, expected %d (another publisher?)", got, target)
	}
	at, ok := s.tr.wait(done, s.timeout)
	record(res, t0, pub, at, ok)
	if s.acted != nil {
		at, ok := s.acted.wait(actedDone, s.timeout)
		record(actedRes, t0, pub, at, ok)
	}
	time.Sleep(s.settle)
	return nil
}

func record(res *fanResult, t0 time.Time, pub time.Duration, at []time.Time, complete bool) {
	var last time.Duration
	for _, t := range at {
		if t.IsZero() {
			continue
		}
		d := max(t.Sub(t0), 0)
		res.deliveries = append(res.deliveries, d)
		last = max(last, d)
	}
	res.changes++
	res.publish = append(res.publish, pub)
	res.last = append(res.last, last)
	if !complete {
		res.incomplete++
	}
}
