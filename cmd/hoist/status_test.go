package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// report publishes a node status as an agent would.
func report(t *testing.T, st *store.Store, node string, age time.Duration, scopes ...events.ScopeStatus) {
	t.Helper()
	ns := &events.NodeStatus{Node: node, Time: time.Now().Add(-age), Interval: events.Duration(time.Second), Scopes: scopes, Runtime: "process"}
	if err := st.PublishStatus(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
}

func scopeReport(desired, applied uint64, phase events.Phase, healthy, total int, errMsg string) events.ScopeStatus {
	s := events.ScopeStatus{Scope: events.MustParseScope("acme.prod.web"), Desired: desired, Applied: applied, Phase: phase, Error: errMsg}
	for i := range total {
		s.Replicas = append(s.Replicas, events.ReplicaStatus{Index: i, State: "running", Healthy: i < healthy})
	}
	return s
}

func TestStatusAndWait(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	st := srv.Store(t)
	const scope = "acme.prod.web"

	r := mustRun(t, 0, hoistAt(url, "status"))
	if !strings.Contains(r.stdout, "no node has reported yet") {
		t.Errorf("status without reports: %s", r)
	}
	mustRun(t, 2, hoistAt(url, "wait", scope, "--timeout", "1s"))                       // no events
	mustRun(t, 2, hoistAt(url, "status", "Acme.prod.web"))                              // bad scope
	mustRun(t, 0, hoistAt(url, "deploy", scope, "--image", "web:1", "--replicas", "2")) // revision 1
	mustRun(t, 2, hoistAt(url, "wait", scope, "--revision", "9"))                       // beyond the head
	mustRun(t, 2, hoistAt(url, "wait", scope, "--timeout", "0s"))

	// No live node serves the scope: wait says so, and times out with 4.
	report(t, st, "node-9", time.Hour, scopeReport(1, 1, events.PhaseConverged, 2, 2, ""))
	r = mustRun(t, 4, hoistAt(url, "wait", scope, "--timeout", "300ms"))
	if !strings.Contains(r.stderr, "timed out after 300ms") || !strings.Contains(r.stderr, "no live node serves acme.prod.web (stale: node-9)") {
		t.Errorf("timeout without nodes: %s", r)
	}

	// A node progressing: wait watches it converge.
	report(t, st, "node-1", 0, scopeReport(1, 0, events.PhaseProgressing, 1, 2, ""))
	done := make(chan result, 1)
	go func() { done <- hoistAt(url, "wait", scope, "--timeout", "30s") }()
	natstest.Eventually(t, 10*time.Second, func() error {
		sts, err := st.NodeStatuses(context.Background(), events.Scope{}, nil)
		if err != nil || len(sts) < 2 {
			return err
		}
		return nil
	})
	report(t, st, "node-1", 0, scopeReport(1, 1, events.PhaseConverged, 2, 2, ""))
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return")
	}
	if r.code != 0 || !strings.Contains(r.stdout, "acme.prod.web revision 1 is converged and healthy on node-1") {
		t.Errorf("wait: %s", r)
	}

	// status: the live node, and the stale one.
	r = mustRun(t, 0, hoistAt(url, "status", scope))
	nodes, replicas, _ := strings.Cut(strings.TrimSpace(r.stdout), "\n\n")
	lines := strings.Split(nodes, "\n")
	if !strings.Contains(replicas, "BACKEND") || strings.Count(replicas, "\n") != 4 {
		t.Errorf("status lists no replicas:\n%s", r.stdout)
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NODE") ||
		!strings.Contains(lines[1], "node-1") || !strings.Contains(lines[1], "converged") || !strings.Contains(lines[1], "2/2") ||
		!strings.Contains(lines[2], "node-9") || !strings.Contains(lines[2], "stale (last seen") {
		t.Errorf("status:\n%s", r.stdout)
	}
	views := decodeJSON[[]projector.NodeView](t, mustRun(t, 0, hoistAt(url, "status", "--json")).stdout)
	if len(views) != 2 || views[0].Node != "node-1" || !views[0].Alive || views[1].Alive {
		t.Errorf("status --json: %+v", views)
	}

	// Revision 2 fails on node-2: wait exits 4 with its reason.
	mustRun(t, 0, hoistAt(url, "scale", scope, "3"))
	report(t, st, "node-2", 0, scopeReport(2, 1, events.PhaseFailed, 2, 2, "replica 2 of acme.prod.web (rev 2) not healthy within 1m0s: GET /up: 503"))
	r = mustRun(t, 4, hoistAt(url, "wait", scope, "--timeout", "10s"))
	if !strings.Contains(r.stderr, "node node-2 failed to roll out acme.prod.web revision 2: replica 2 of acme.prod.web (rev 2) not healthy within 1m0s: GET /up: 503") {
		t.Errorf("failed wait: %s", r)
	}
	// Both nodes still run revision 1 healthy: node-2 failed only later.
	mustRun(t, 0, hoistAt(url, "wait", scope, "--revision", "1", "--timeout", "5s"))
}

// A node that converged on a history the stream does not hold (the server
// was restored from an older backup) does not make wait succeed: wait
// checks each node's head against the stream, and names the node.
func TestWaitChecksTheHistoryNodesRead(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	st := srv.Store(t)
	const scope = "acme.prod.web"
	mustRun(t, 0, hoistAt(url, "deploy", scope, "--image", "web:1"))
	ctx := context.Background()
	h, err := st.ScopeHistory(ctx, events.MustParseScope(scope), 0)
	if err != nil || len(h.Records) != 1 {
		t.Fatalf("history: %v %v", h, err)
	}
	held := events.Mark{Sequence: h.Records[0].Sequence, Digest: events.Digest(h.Records[0].Message.Data)}

	for _, head := range []events.Mark{
		{Sequence: held.Sequence, Digest: events.Digest([]byte("another message"))}, // another message at that sequence
		{Sequence: held.Sequence + 5, Digest: held.Digest},                          // beyond the stream's end
	} {
		rep := scopeReport(1, 1, events.PhaseConverged, 1, 1, "")
		rep.Head = &head
		report(t, st, "node-1", 0, rep)
		r := mustRun(t, 4, hoistAt(url, "wait", scope, "--timeout", "1500ms"))
		if !strings.Contains(r.stderr, "node-1 read a history of acme.prod.web the stream does not hold") {
			t.Errorf("wait on a diverged node (head %+v): %s", head, r)
		}
	}
	rep := scopeReport(1, 1, events.PhaseConverged, 1, 1, "")
	rep.Head = &held
	report(t, st, "node-1", 0, rep)
	mustRun(t, 0, hoistAt(url, "wait", scope, "--timeout", "10s"))
}
