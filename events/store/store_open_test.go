package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// Open leaves streams that already have hoist's settings alone (no
// update for every process that starts), and still updates those whose
// settings changed.
func TestOpenStoreUpdatesOnlyChangedStreams(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	ctx := context.Background()
	if _, err := store.Open(ctx, nc, store.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(ctx, nc, store.Options{ScoreHistory: 32, ReportsMaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	js := rawJS(t, srv)
	for name, check := range map[string]func(mmps int64, age time.Duration) bool{
		events.ScoresStream:  func(mmps int64, _ time.Duration) bool { return mmps == 32 },
		events.ReportsStream: func(_ int64, age time.Duration) bool { return age == time.Hour },
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; !check(cfg.MaxMsgsPerSubject, cfg.MaxAge) {
			t.Errorf("%s was not updated: max msgs per subject %d, max age %s", name, cfg.MaxMsgsPerSubject, cfg.MaxAge)
		}
	}
	for _, name := range []string{events.EventsStream, events.ScoresStream, events.ReportsStream, events.BackendsStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.MaxConsumers; got != store.MaxConsumers {
			t.Errorf("%s allows %d consumers, want %d (the server's default caps a fleet at 1,000)", name, got, store.MaxConsumers)
		}
	}
	// Opening again with the defaults puts them back.
	if _, err := store.Open(ctx, nc, store.Options{}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, events.ScoresStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxMsgsPerSubject; got != store.DefaultScoreHistory {
		t.Errorf("scores keep %d per subject, want %d", got, store.DefaultScoreHistory)
	}
}

// A fleet is not capped by nats-server's default of 1,000 consumers per
// stream: agent 1,001 still gets its durable consumer.
func TestStreamsTakeMoreThanAThousandConsumers(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,001 consumers")
	}
	srv := natstest.Start(t)
	srv.Store(t)
	ctx := context.Background()
	stream, err := rawJS(t, srv).Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1001 {
		if _, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("agent-n%04d", i), FilterSubjects: []string{events.NodeFilter(fmt.Sprintf("n%04d", i))},
			AckPolicy: jetstream.AckExplicitPolicy, MemoryStorage: true,
		}); err != nil {
			t.Fatalf("consumer %d: %v", i+1, err)
		}
	}
}

// SyncAlways reaches JetStream: every write is fsynced before its ack.
func TestServerSyncAlways(t *testing.T) {
	if got := natstest.StartSyncAlways(t).NATS().JetStreamConfig().SyncAlways; !got {
		t.Fatal("SyncAlways is not set on JetStream")
	}
	if got := natstest.Start(t).NATS().JetStreamConfig().SyncAlways; got {
		t.Fatal("SyncAlways is set by default")
	}
}
