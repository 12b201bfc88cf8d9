package store

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// statsStreamConfig is the stream of the balancers' request statistics:
// a short history per scope and balancer, enough for an analysis that
// takes over to find a window's start, and an age limit that drops what
// silent balancers and ended canaries left.
func statsStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              events.StatsStream,
		Description:       "hoist request statistics of canaries: a short history per scope and balancer",
		Subjects:          []string{events.SubjectRoot + ".stats.*.*.*.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: events.StatsHistory,
		MaxAge:            events.StatsMaxAge,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
}

// PublishRequestStats stores a balancer's statistics of scope's canary.
func (s *Store) PublishRequestStats(ctx context.Context, scope events.Scope, st *events.RequestStats) error {
	if err := st.Validate(); err != nil {
		return err
	}
	return s.publishReport(ctx, events.StatsSubject(scope, st.Balancer), st)
}

// RequestStats returns every statistics message the stream holds for
// scope, oldest first: a few minutes of each balancer's counters. A
// message that cannot be read is skipped.
func (s *Store) RequestStats(ctx context.Context, scope events.Scope) ([]*events.RequestStats, error) {
	var out []*events.RequestStats
	_, err := s.read(ctx, readSpec{stream: events.StatsStream, filter: events.StatsFilter(scope)}, func(m events.Message) bool {
		r := events.Interpret(m)
		if r.Err != nil {
			s.log.Debug("skipping request statistics", "err", r.Err)
			return true
		}
		out = append(out, r.Stats)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read request statistics of %s: %w", scope, err)
	}
	return out, nil
}
