package projector

import (
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

var (
	stWeb = events.MustParseScope("acme.prod.web")
	stAPI = events.MustParseScope("acme.prod.api")
	stT0  = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
)

func stReplicas(healthy, total int) []events.ReplicaStatus {
	out := make([]events.ReplicaStatus, total)
	for i := range out {
		out[i] = events.ReplicaStatus{Index: i, State: "running", Healthy: i < healthy}
	}
	return out
}

func stNode(name string, age time.Duration, scopes ...events.ScopeStatus) *events.NodeStatus {
	return &events.NodeStatus{Node: name, Time: stT0.Add(-age), Interval: events.Duration(5 * time.Second), Scopes: scopes}
}

func stScope(sc events.Scope, desired, applied uint64, phase events.Phase, healthy, total int, err string) events.ScopeStatus {
	return events.ScopeStatus{Scope: sc, Desired: desired, Applied: applied, Phase: phase, Replicas: stReplicas(healthy, total), Error: err}
}

func TestStatusView(t *testing.T) {
	statuses := []*events.NodeStatus{
		stNode("node-2", time.Second, stScope(stWeb, 3, 3, events.PhaseConverged, 2, 2, "")),
		stNode("node-1", time.Second,
			stScope(stWeb, 3, 2, events.PhaseFailed, 1, 2, "replica 1 not healthy"),
			stScope(stAPI, 1, 1, events.PhaseConverged, 1, 1, "")),
		stNode("node-3", time.Minute, stScope(stWeb, 2, 2, events.PhaseConverged, 2, 2, "")),
		stNode("idle", time.Second),
		nil,
	}

	all := StatusView(statuses, events.Scope{}, stT0)
	var got []string
	for _, v := range all {
		got = append(got, v.Node+"/"+v.Scope.String())
	}
	want := "idle/ node-1/acme.prod.api node-1/acme.prod.web node-2/acme.prod.web node-3/acme.prod.web"
	if strings.Join(got, " ") != want {
		t.Fatalf("all views: got %v, want %s", got, want)
	}

	webOnly := StatusView(statuses, stWeb, stT0)
	if len(webOnly) != 3 {
		t.Fatalf("stWeb views: got %d, want 3: %+v", len(webOnly), webOnly)
	}
	n1 := webOnly[0]
	if n1.Node != "node-1" || n1.Healthy != 1 || n1.Total != 2 || n1.Phase != events.PhaseFailed || n1.Error == "" || !n1.Alive {
		t.Errorf("node-1 view: %+v", n1)
	}
	if n3 := webOnly[2]; n3.Alive || !n3.Stale() {
		t.Errorf("node-3 should be stale: %+v", n3)
	}
}

func TestRolloutState(t *testing.T) {
	tests := []struct {
		name     string
		statuses []*events.NodeStatus
		rev      uint64
		done     bool
		failed   bool
		reason   string // substring
	}{
		{
			name: "no node at all",
			rev:  1, reason: "no live node serves acme.prod.web",
		},
		{
			name:     "only a stale node",
			statuses: []*events.NodeStatus{stNode("n1", time.Hour, stScope(stWeb, 1, 1, events.PhaseConverged, 1, 1, ""))},
			rev:      1, reason: "no live node serves acme.prod.web (stale: n1)",
		},
		{
			name:     "live nodes of other scopes only",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stAPI, 1, 1, events.PhaseConverged, 1, 1, ""))},
			rev:      1, reason: "no live node serves",
		},
		{
			name: "every live node converged and healthy",
			statuses: []*events.NodeStatus{
				stNode("n1", 0, stScope(stWeb, 4, 4, events.PhaseConverged, 3, 3, "")),
				stNode("n2", time.Second, stScope(stWeb, 4, 4, events.PhaseConverged, 1, 1, "")),
				stNode("dead", time.Hour, stScope(stWeb, 2, 1, events.PhaseFailed, 0, 1, "boom")),
			},
			rev: 4, done: true,
		},
		{
			name:     "a later revision applied counts",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 5, 5, events.PhaseConverged, 1, 1, ""))},
			rev:      4, done: true,
		},
		{
			name:     "removed scope",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 6, 6, events.PhaseRemoved, 0, 0, ""))},
			rev:      6, done: true,
		},
		{
			name:     "not received yet",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 3, 3, events.PhaseConverged, 1, 1, ""))},
			rev:      4, reason: "n1 has not received revision 4 yet (at 3)",
		},
		{
			name:     "progressing",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 4, 3, events.PhaseProgressing, 2, 3, ""))},
			rev:      4, reason: "n1 is progressing to revision 4, 2/3 replicas healthy",
		},
		{
			name:     "converged phase but an unhealthy replica",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 4, 4, events.PhaseConverged, 2, 3, ""))},
			rev:      4, reason: "n1 is converged at revision 4, 2/3 replicas healthy",
		},
		{
			name: "one node failed",
			statuses: []*events.NodeStatus{
				stNode("n1", 0, stScope(stWeb, 4, 4, events.PhaseConverged, 1, 1, "")),
				stNode("n2", 0, stScope(stWeb, 4, 3, events.PhaseFailed, 2, 2, "replica 0 of acme.prod.web (rev 4) not healthy within 1s:\nGET /up: 503")),
			},
			rev: 4, failed: true,
			reason: "node n2 failed to roll out acme.prod.web revision 4: replica 0 of acme.prod.web (rev 4) not healthy within 1s: GET /up: 503 (applied revision 3, 2/2 replicas healthy)",
		},
		{
			name:     "failed on an older revision is still pending",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 3, 2, events.PhaseFailed, 1, 1, "old failure"))},
			rev:      4, reason: "has not received revision 4",
		},
		{
			name:     "a later revision failed but this one still runs",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 5, 4, events.PhaseFailed, 2, 2, "boom"))},
			rev:      4, done: true,
		},
		{
			name:     "a later revision failed and this one is not applied",
			statuses: []*events.NodeStatus{stNode("n1", 0, stScope(stWeb, 5, 3, events.PhaseFailed, 2, 2, "boom"))},
			rev:      4, failed: true, reason: "node n1 failed to roll out acme.prod.web revision 5: boom",
		},
		{
			name: "pending names stale nodes it ignores",
			statuses: []*events.NodeStatus{
				stNode("n1", 0, stScope(stWeb, 4, 3, events.PhaseProgressing, 0, 1, "")),
				stNode("n9", time.Hour, stScope(stWeb, 1, 1, events.PhaseConverged, 1, 1, "")),
			},
			rev: 4, reason: "(ignoring stale nodes: n9)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RolloutState(tt.statuses, stWeb, tt.rev, stT0)
			if got.Done != tt.done || got.Failed != tt.failed {
				t.Fatalf("done=%v failed=%v, want done=%v failed=%v (reason %q)", got.Done, got.Failed, tt.done, tt.failed, got.Reason)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.reason)
			}
		})
	}
}
