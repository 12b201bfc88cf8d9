package change_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

var web = events.MustParseScope("acme.prod.web")

func scaleTo(n int) change.Builder {
	return func(*projector.History) (events.Payload, error) { return &events.Scaled{Replicas: n}, nil }
}

// Publishers racing for one scope's head: without an expected revision
// each loser builds again on the new head and is stored (the one layer of
// race retries); with one, the loser fails with the *store.ConflictError
// (hoist's exit code 3) and nothing of it is stored.
func TestPublishRaces(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	stores := []*store.Store{srv.Store(t), srv.Store(t), srv.Store(t)}
	if _, err := stores[0].Append(ctx, &events.Event{Scope: web, Actor: "test", Data: &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1, Port: 8080}}}, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}

	const n = 12
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if _, err := change.Publish(ctx, stores[i%len(stores)], change.Request{Scope: web, Actor: "test", Build: scaleTo(i + 2)}); err != nil {
				t.Errorf("publisher %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	h, err := stores[0].ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Head.Revision != n+1 {
		t.Fatalf("head at revision %d after %d racing publishes on revision 1", h.Head.Revision, n)
	}

	stale := uint64(1)
	_, err = change.Publish(ctx, stores[1], change.Request{Scope: web, Actor: "test", Expect: &stale, Build: scaleTo(1)})
	var conflict *store.ConflictError
	if !errors.As(err, &conflict) || conflict.Expected != 1 || conflict.Actual != n+1 {
		t.Fatalf("publish expecting revision 1 at head %d: %v", n+1, err)
	}
	if h, err := stores[0].ScopeHistory(ctx, web, 0); err != nil || h.Head.Revision != n+1 {
		t.Fatalf("after the conflict: head %v, %v", h.Head, err)
	}
}
