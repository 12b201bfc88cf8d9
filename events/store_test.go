package events_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

var web = events.MustParseScope("acme.prod.web")

func deployEvent(image string, replicas int) *events.Event {
	return &events.Event{Scope: web, Actor: "test@host", Data: &events.Deployed{Spec: events.Spec{Image: image, Replicas: replicas, Port: 8080}}}
}

func TestAppendAssignsGaplessRevisions(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := t.Context()

	for i := 1; i <= 3; i++ {
		ev, err := st.Append(ctx, deployEvent("web:1", i), events.AppendOptions{})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if ev.Revision != uint64(i) {
			t.Fatalf("append %d got revision %d", i, ev.Revision)
		}
	}
	// Another scope and a node event must not disturb web's counter.
	other := events.MustParseScope("acme.prod.api")
	if ev, err := st.Append(ctx, &events.Event{Scope: other, Data: &events.Removed{}}, events.AppendOptions{}); err != nil || ev.Revision != 1 {
		t.Fatalf("other scope: rev %v err %v", ev, err)
	}
	if _, err := st.Append(ctx, &events.Event{Node: "node-1", Data: &events.NodeDrained{}}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	read, err := st.ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Events) != 3 || read.Events[2].Revision != 3 {
		t.Fatalf("history: %+v", read.Events)
	}
	upTo, err := st.ScopeHistory(ctx, web, 2)
	if err != nil || len(upTo.Events) != 2 {
		t.Fatalf("history up to 2: %d events, %v", len(upTo.Events), err)
	}
	scopes, err := st.Scopes(ctx)
	if err != nil || len(scopes) != 2 || scopes[1].Scope != web || scopes[1].Revision != 3 {
		t.Fatalf("scopes: %+v %v", scopes, err)
	}
}

func TestExpectRevisionConflict(t *testing.T) {
	st := natstest.Start(t).Store(t)
	ctx := t.Context()
	if _, err := st.Append(ctx, deployEvent("web:1", 1), events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, deployEvent("web:2", 1), events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	one := uint64(1)
	_, err := st.Append(ctx, &events.Event{Scope: web, Data: &events.Scaled{Replicas: 2}}, events.AppendOptions{ExpectRevision: &one})
	var conflict *events.ConflictError
	if !errors.As(err, &conflict) || conflict.Expected != 1 || conflict.Actual != 2 {
		t.Fatalf("want conflict 1 vs 2, got %v", err)
	}
	head, _ := st.ScopeHead(ctx, web)
	if head.Revision != 2 {
		t.Fatalf("conflicting append was stored: head %d", head.Revision)
	}
}

// Two publishers that both read head N and both append conditionally must
// not both win.
func TestConcurrentConditionalPublishersNeverBothWin(t *testing.T) {
	srv := natstest.Start(t)
	ctx := t.Context()
	a, b := srv.Store(t), srv.Store(t)
	if _, err := a.Append(ctx, deployEvent("web:1", 1), events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for round := uint64(1); round <= 30; round++ {
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, st := range []*events.Store{a, b} {
			wg.Go(func() {
				expect := round
				_, err := st.Append(ctx, &events.Event{Scope: web, Data: &events.Scaled{Replicas: int(round)}}, events.AppendOptions{ExpectRevision: &expect})
				var conflict *events.ConflictError
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.As(err, &conflict):
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d publishers won, want exactly 1", round, wins.Load())
		}
	}
	// Unconditional publishers racing all get stored, with distinct revisions.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := b.Append(ctx, &events.Event{Scope: web, Data: &events.Scaled{Replicas: 7}}, events.AppendOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	read, err := a.ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range read.Events {
		if e.Revision != uint64(i+1) {
			t.Fatalf("event %d has revision %d: revisions have a gap or a duplicate", i, e.Revision)
		}
	}
	if len(read.Events) != 51 {
		t.Fatalf("want 51 events, got %d", len(read.Events))
	}
}

func TestRetriedPublishIsStoredOnce(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := t.Context()
	ev := deployEvent("web:1", 2)
	ev.ID = "fixed-id-1"
	first, err := st.Append(ctx, ev, events.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A retry after a lost ack reuses the id (and the same expectation).
	second, err := st.Append(ctx, ev, events.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID {
		t.Fatalf("ids differ")
	}
	read, err := st.ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Events) != 1 {
		t.Fatalf("retried publish stored %d times", len(read.Events))
	}
	// Also at the raw level: the same Msg-Id is acked as a duplicate.
	js := st.JetStream()
	ack, err := js.Publish(ctx, events.ScopeSubject(web, events.KindDeployed), []byte("{}"), jetstream.WithMsgID("fixed-id-1"))
	if err != nil || !ack.Duplicate {
		t.Fatalf("raw republish: ack %+v err %v", ack, err)
	}
}

func TestStateSurvivesServerRestart(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := t.Context()
	for i := 1; i <= 5; i++ {
		if _, err := st.Append(ctx, deployEvent("web:1", i), events.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	// The daemon connection reconnects by itself; appends continue the count.
	natstest.Eventually(t, 20*time.Second, func() error {
		_, err := st.Append(ctx, deployEvent("web:1", 9), events.AppendOptions{})
		return err
	})
	read, err := st.ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Events) != 6 || read.Events[5].Revision != 6 || read.Events[4].Data.(*events.Deployed).Spec.Replicas != 5 {
		t.Fatalf("after restart: %d events", len(read.Events))
	}
	// A fresh connection to the restarted server sees the same history.
	fresh := srv.Store(t)
	again, err := fresh.ScopeHistory(context.Background(), web, 0)
	if err != nil || len(again.Events) != 6 {
		t.Fatalf("fresh reader: %d events, %v", len(again.Events), err)
	}
}

func TestGarbageOnTheStreamIsSkipped(t *testing.T) {
	st := natstest.Start(t).Store(t)
	ctx := t.Context()
	if _, err := st.Append(ctx, deployEvent("web:1", 1), events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.JetStream().Publish(ctx, events.ScopeSubject(web, "bogus"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	read, err := st.ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Events) != 1 || len(read.Skipped) != 1 {
		t.Fatalf("want 1 event and 1 skipped, got %d and %d", len(read.Events), len(read.Skipped))
	}
}

func TestStreamsDenyDeleteAndPurge(t *testing.T) {
	st := natstest.Start(t).Store(t)
	ctx := t.Context()
	if _, err := st.Append(ctx, deployEvent("web:1", 1), events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := st.JetStream().Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("purge of the config stream succeeded")
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("delete from the config stream succeeded")
	}
}

// A stray event published around hoist with a far-off revision must not
// move the scope's revision counter.
func TestStrayRevisionDoesNotMoveTheHead(t *testing.T) {
	st := natstest.Start(t).Store(t)
	ctx := t.Context()
	if _, err := st.Append(ctx, deployEvent("web:1", 1), events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	stray := &events.Event{ID: "stray", Scope: web, Revision: 7, Time: time.Now(), Data: &events.Scaled{Replicas: 9}}
	data, err := events.Encode(stray)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.JetStream().Publish(ctx, events.ScopeSubject(web, events.KindScaled), data); err != nil {
		t.Fatal(err)
	}
	ev, err := st.Append(ctx, &events.Event{Scope: web, Data: &events.Scaled{Replicas: 2}}, events.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Revision != 2 {
		t.Fatalf("next append got revision %d, want 2", ev.Revision)
	}
}
