package projector

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// NodeView is one node's view of one scope, as hoist status shows it. A
// node that serves no scope yet has one view with a zero Scope.
type NodeView struct {
	Node     string        `json:"node"`
	Scope    events.Scope  `json:"scope,omitzero"`
	Alive    bool          `json:"alive"`
	LastSeen time.Time     `json:"last_seen"`
	Drained  bool          `json:"drained,omitempty"`
	Desired  uint64        `json:"desired"`
	Applied  uint64        `json:"applied"`
	Phase    events.Phase  `json:"phase,omitempty"`
	Healthy  int           `json:"healthy"`
	Total    int           `json:"total"`
	Error    string        `json:"error,omitempty"`
	Replicas []ReplicaView `json:"replicas,omitempty"`
	// Analysis is the scope's canary analysis as the node sees it.
	Analysis *events.AnalysisStatus `json:"analysis,omitempty"`
}

// ReplicaView is one replica in a NodeView.
type ReplicaView = events.ReplicaStatus

// Stale reports whether the view comes from a node that stopped reporting.
func (v NodeView) Stale() bool { return !v.Alive }

// StatusView folds the latest status of every node into one view per node
// and scope, sorted by scope then node. A zero scope keeps every scope;
// otherwise only the nodes that report that scope are kept. Nodes whose
// heartbeat is older than three of their intervals at now are not Alive.
func StatusView(statuses []*events.NodeStatus, scope events.Scope, now time.Time) []NodeView {
	var out []NodeView
	for _, st := range statuses {
		if st == nil {
			continue
		}
		base := NodeView{Node: st.Node, Alive: st.Alive(now), LastSeen: st.Time, Drained: st.Drained}
		if len(st.Scopes) == 0 && scope.IsZero() {
			base.Error = st.Error
			out = append(out, base)
			continue
		}
		for _, sc := range st.Scopes {
			if !scope.IsZero() && sc.Scope != scope {
				continue
			}
			v := base
			v.Scope, v.Desired, v.Applied, v.Phase, v.Error = sc.Scope, sc.Desired, sc.Applied, sc.Phase, sc.Error
			if v.Error == "" {
				v.Error = st.Error
			}
			v.Replicas, v.Analysis = sc.Replicas, sc.Analysis
			v.Total = len(sc.Replicas)
			for _, r := range sc.Replicas {
				if r.Healthy {
					v.Healthy++
				}
			}
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b NodeView) int {
		return cmp.Or(cmp.Compare(a.Scope.String(), b.Scope.String()), cmp.Compare(a.Node, b.Node))
	})
	return out
}

// Rollout is the verdict of RolloutState: done, failed, or still pending.
type Rollout struct {
	Done   bool
	Failed bool
	// Reason says which node failed and why, or what is still pending.
	Reason string
	// Nodes are the live nodes that serve the scope.
	Nodes []string
}

// RolloutState decides whether scope runs revision rev converged and healthy
// on every live node that serves it. It is what hoist wait exits on:
//
//   - Failed when a live node has not applied rev and its phase is failed
//     for rev or a later revision: it could not roll it out (its old
//     replicas keep serving).
//   - Done when every live node has applied rev or later, every replica it
//     reports is healthy, and it is converged (or removed, or failing only
//     a later revision while it still runs this one).
//   - Pending otherwise, including when no live node serves the scope.
//
// Stale nodes (no heartbeat for three intervals) are ignored, and named in
// the reason of a pending verdict.
func RolloutState(statuses []*events.NodeStatus, scope events.Scope, rev uint64, now time.Time) Rollout {
	var (
		r       Rollout
		pending []string
		stale   []string
	)
	for _, v := range StatusView(statuses, scope, now) {
		if v.Scope != scope {
			continue
		}
		if !v.Alive {
			stale = append(stale, v.Node)
			continue
		}
		r.Nodes = append(r.Nodes, v.Node)
		switch {
		case v.Desired < rev:
			pending = append(pending, fmt.Sprintf("%s has not received revision %d yet (at %d)", v.Node, rev, v.Desired))
		case v.Applied < rev && v.Phase == events.PhaseFailed:
			reason := v.Error
			if reason == "" {
				reason = "no reason given"
			}
			r.Failed = true
			r.Reason = fmt.Sprintf("node %s failed to roll out %s revision %d: %s (applied revision %d, %d/%d replicas healthy)",
				v.Node, scope, v.Desired, oneLine(reason), v.Applied, v.Healthy, v.Total)
			return r
		case v.Applied < rev:
			pending = append(pending, fmt.Sprintf("%s is %s to revision %d, %d/%d replicas healthy", v.Node, phaseWord(v.Phase), v.Desired, v.Healthy, v.Total))
		case v.Phase == events.PhaseRemoved:
		case v.Phase == events.PhaseFailed && v.Healthy == v.Total:
			// A later revision failed; the node still runs this one.
		case v.Phase != events.PhaseConverged || v.Healthy < v.Total:
			pending = append(pending, fmt.Sprintf("%s is %s at revision %d, %d/%d replicas healthy", v.Node, phaseWord(v.Phase), v.Applied, v.Healthy, v.Total))
		}
	}
	if len(r.Nodes) == 0 {
		r.Reason = fmt.Sprintf("no live node serves %s", scope)
		if len(stale) > 0 {
			r.Reason += fmt.Sprintf(" (stale: %s)", strings.Join(stale, ", "))
		}
		return r
	}
	if len(pending) > 0 {
		r.Reason = strings.Join(pending, "; ")
		if len(stale) > 0 {
			r.Reason += fmt.Sprintf(" (ignoring stale nodes: %s)", strings.Join(stale, ", "))
		}
		return r
	}
	r.Done = true
	return r
}

func phaseWord(p events.Phase) string {
	if p == "" {
		return "progressing"
	}
	return string(p)
}

// oneLine keeps a reason on one line for terminals and logs.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
