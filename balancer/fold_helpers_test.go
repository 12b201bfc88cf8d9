package balancer

import (
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The balancer folds no config event: agents report a scope's hosts,
// health path, cache and removal with its backends. These helpers let the
// table tests say "the scope was deployed with these hosts" by folding the
// events the way an agent does and handing the balancer the report an agent
// would publish, as node "desired".

var testHistories = map[*folded]map[events.Scope]*projector.History{}

func (f *folded) applyEvent(e *events.Event) error {
	switch {
	case e.Kind.IsNodeKind():
		if e.Kind == events.KindNodeDrained {
			f.drained[e.Node] = true
		} else {
			delete(f.drained, e.Node)
		}
		return nil
	case !e.Kind.IsScopeKind():
		return errDuplicate
	}
	hs := testHistories[f]
	if hs == nil {
		hs = map[events.Scope]*projector.History{}
		testHistories[f] = hs
	}
	h := hs[e.Scope]
	if h == nil {
		h = projector.NewHistory(e.Scope)
	}
	if err := h.Apply(e); err != nil {
		return err
	}
	hs[e.Scope] = h
	st := h.State()
	rep := &events.BackendsReport{Node: "desired", Scope: e.Scope, Revision: st.Revision, Removed: st.Removed, Backends: []string{}}
	if st.Spec != nil {
		rep.Hosts, rep.HealthPath, rep.Cache = st.Spec.Hosts, st.Spec.HealthPath, st.Spec.Cache
	}
	return f.applyReport(reportRecord(rep))
}

func (f *folded) applyScore(e *events.Event) error {
	d := e.Data.(*events.BackendScored)
	testSeq++
	return f.scores.Take(events.Record{
		Message: events.Message{Stream: events.ScoresStream, Subject: events.ScoreSubject(e.Scope, d.Backend), Sequence: testSeq, Time: e.Time},
		Address: events.Address{Family: events.FamilyScore, Scope: e.Scope, Kind: events.KindBackendScored, Backend: d.Backend},
		Event:   e,
	})
}

var testSeq uint64

func reportRecord(r *events.BackendsReport) events.Record {
	testSeq++
	return events.Record{
		Message:  events.Message{Stream: events.BackendsStream, Subject: events.BackendsSubject(r.Scope, r.Node), Sequence: testSeq, Time: time.Now()},
		Address:  events.Address{Family: events.FamilyBackends, Scope: r.Scope, Node: r.Node},
		Backends: r,
	}
}
