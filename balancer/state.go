package balancer

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// folded is everything the streams have said so far, folded: the input of
// buildTable. It is owned by one goroutine (the builder) and does no I/O,
// so the same messages in the same order give the same folded state.
type folded struct {
	// reports holds each node's latest accepted backends report per scope.
	reports map[events.Scope]map[string]*events.BackendsReport
	scores  *projector.Scores
	drained map[string]bool
	// nodes numbers the node histories, as every reader does.
	nodes *events.Reader
}

func newFolded() *folded {
	return &folded{
		reports: make(map[events.Scope]map[string]*events.BackendsReport),
		scores:  projector.NewScores(),
		drained: make(map[string]bool),
		nodes:   events.NewReader(),
	}
}

// reset forgets what src folded, before it is read again from the start.
func (f *folded) reset(src source) {
	fresh := newFolded()
	switch src {
	case srcNodes:
		f.drained, f.nodes = fresh.drained, fresh.nodes
	case srcScores:
		f.scores = fresh.scores
	case srcReports:
		f.reports = fresh.reports
	}
}

// errDuplicate marks a message already folded (a reader restarted).
var errDuplicate = errors.New("already folded")

// applyNode folds one message of a node's history: the latest accepted
// drain or undrain wins (a node's key changes nothing here).
func (f *folded) applyNode(m events.Message) error {
	r := f.nodes.Read(m)
	switch {
	case r.Duplicate:
		return errDuplicate
	case r.Err != nil:
		return r.Err
	case r.Family != events.FamilyNode:
		return fmt.Errorf("%s is not a node event", m.Subject)
	case r.Kind == events.KindNodeDrained:
		f.drained[r.Node] = true
	case r.Kind == events.KindNodeUndrained:
		delete(f.drained, r.Node)
	}
	return nil
}

// applyReport replaces a node's report for a scope. A report with no
// backends, no hosts and no removal withdraws the node from the scope.
func (f *folded) applyReport(r events.Record) error {
	if r.Err != nil {
		return r.Err
	}
	rep := r.Backends
	byNode := f.reports[rep.Scope]
	if len(rep.Backends) == 0 && len(rep.Hosts) == 0 && !rep.Removed {
		delete(byNode, rep.Node)
		if len(byNode) == 0 {
			delete(f.reports, rep.Scope)
		}
		return nil
	}
	if byNode == nil {
		byNode = make(map[string]*events.BackendsReport)
		f.reports[rep.Scope] = byNode
	}
	cp := *rep
	cp.Backends = slices.Compact(slices.Sorted(slices.Values(rep.Backends)))
	byNode[rep.Node] = &cp
	return nil
}

// route is what a scope's reports say of its desired state: the hosts,
// health path, cache and removal of the newest revision any node reports
// (the union of hosts at that revision). Nodes behind it are catching up;
// announced static backends report revision 0 and count only while no
// agent reports the scope.
type route struct {
	hosts      []string
	healthPath string
	cache      *events.CachePolicy
	removed    bool
	// traffic is the canary split, pause and maintenance page of the
	// newest revision, as the first node reporting it says.
	traffic *events.Traffic
}

func (f *folded) route(sc events.Scope) route {
	var (
		rt  route
		top uint64
		any bool
	)
	nodes := slices.Sorted(maps.Keys(f.reports[sc]))
	for _, n := range nodes {
		if r := f.reports[sc][n]; !any || r.Revision > top {
			top, any = r.Revision, true
		}
	}
	rt.removed = any
	for _, n := range nodes {
		r := f.reports[sc][n]
		if r.Revision != top {
			continue
		}
		rt.hosts = append(rt.hosts, r.Hosts...)
		rt.removed = rt.removed && r.Removed
		if rt.healthPath == "" {
			rt.healthPath = r.HealthPath
		}
		if rt.cache == nil {
			rt.cache = r.Cache
		}
		if rt.traffic == nil {
			rt.traffic = r.Traffic
		}
	}
	rt.hosts = slices.Compact(slices.Sorted(slices.Values(rt.hosts)))
	return rt
}

// scopes lists every scope that is deployed or has backends, sorted.
func (f *folded) scopes() []events.Scope {
	out := make([]events.Scope, 0, len(f.reports))
	for sc := range f.reports {
		out = append(out, sc)
	}
	slices.SortFunc(out, compareScopes)
	return out
}

func compareScopes(a, b events.Scope) int {
	return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.Solution, b.Solution))
}
