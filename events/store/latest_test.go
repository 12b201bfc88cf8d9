package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// NodeStatuses reads the last status of every node while nodes keep
// reporting. A read must never lose a node whose report moved on between
// the stream's info and the read (it once stopped at the stream's last
// sequence, which a last-per-subject read can pass before it has seen
// every subject, and `hoist wait` then declared a rollout done on one node
// of two).
//
// The redesign's first push-consumer read lost nodes this way again: a
// last-per-subject consumer skips a subject's message that newer ones
// superseded while it ran, and delivers the newer one only after the count
// taken at the start, so stopping at that count lost the subject.
//
// Reports are now one per node and scope (PublishStatus splits a node's
// status), so each node here reports one scope, and the read merges them
// back per node.
func TestNodeStatusesWhileNodesReport(t *testing.T) {
	st := natstest.Start(t).Store(t)
	const nodes = 8
	status := func(i int) *events.NodeStatus {
		return &events.NodeStatus{Node: fmt.Sprintf("node-%d", i), Time: time.Now().UTC(), Interval: events.Duration(time.Second),
			Scopes: []events.ScopeStatus{{Scope: web, Desired: 1, Applied: 1, Phase: events.PhaseConverged}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range nodes {
		if err := st.PublishStatus(ctx, status(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := st.PublishStatus(ctx, status(i%nodes)); err != nil && ctx.Err() == nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for range 200 {
		got, err := st.NodeStatuses(ctx, events.Scope{}, func(r events.Record) { t.Errorf("rejected %v", r.Err) })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != nodes {
			names := make([]string, len(got))
			for i, s := range got {
				names[i] = s.Node
			}
			t.Fatalf("NodeStatuses returned %d of %d nodes: %v", len(got), nodes, names)
		}
	}
}
