package balancer

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// folded is everything the streams have said so far, folded: the input of
// buildTable. It is owned by one goroutine (the builder) and does no I/O,
// so the same messages in the same order give the same folded state.
type folded struct {
	histories map[events.Scope]*projector.History
	// reports holds each node's latest valid backends per scope.
	reports map[events.Scope]map[string][]string
	scores  *projector.Scores
	drained map[string]bool
}

func newFolded() *folded {
	return &folded{
		histories: make(map[events.Scope]*projector.History),
		reports:   make(map[events.Scope]map[string][]string),
		scores:    projector.NewScores(),
		drained:   make(map[string]bool),
	}
}

// applyEvent folds one decoded HOIST_EVENTS event: a scope change or a node
// drain. It returns a *projector.Skip (or another error) for an event it
// could not apply, and changes nothing then.
func (f *folded) applyEvent(e *events.Event) error {
	switch {
	case e.Kind.IsScopeKind():
		h := f.histories[e.Scope]
		if h == nil {
			h = projector.NewHistory(e.Scope)
		}
		if err := h.Apply(e); err != nil {
			return err
		}
		f.histories[e.Scope] = h
		return nil
	case e.Kind == events.KindNodeDrained:
		f.drained[e.Node] = true
		return nil
	case e.Kind == events.KindNodeUndrained:
		delete(f.drained, e.Node)
		return nil
	}
	return fmt.Errorf("%s event does not belong on the events stream", e.Kind)
}

// applyScore folds one decoded score event.
func (f *folded) applyScore(e *events.Event) error {
	return f.scores.Apply(e)
}

// applyReport replaces a node's backends for a scope; an empty report
// withdraws them.
func (f *folded) applyReport(r *events.BackendsReport) {
	byNode := f.reports[r.Scope]
	if len(r.Backends) == 0 {
		delete(byNode, r.Node)
		if len(byNode) == 0 {
			delete(f.reports, r.Scope)
		}
		return
	}
	if byNode == nil {
		byNode = make(map[string][]string)
		f.reports[r.Scope] = byNode
	}
	b := slices.Clone(r.Backends)
	slices.Sort(b)
	byNode[r.Node] = slices.Compact(b)
}

// scopes lists every scope that is deployed or has backends, sorted.
func (f *folded) scopes() []events.Scope {
	seen := make(map[events.Scope]bool, len(f.histories)+len(f.reports))
	var out []events.Scope
	for sc := range f.histories {
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	for sc := range f.reports {
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	slices.SortFunc(out, compareScopes)
	return out
}

func compareScopes(a, b events.Scope) int {
	return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.Solution, b.Solution))
}
