package nodeagent

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// statusBook is the agent's status model: what it knows and shows. It holds
// each scope's desired and applied revision, phase, replicas and backends,
// the node's drain standing and scores. Workers, the feed and the score
// reader write it; the reporter and the agent-check listener read it.
// Every change pokes changed. (The desired state itself is the feed's
// desiredBook, book.go.)
type statusBook struct {
	mu        sync.Mutex
	node      string
	advertise string
	runtime   string
	version   string
	started   time.Time
	interval  time.Duration

	drained     bool
	drainReason string
	nodeErrs    map[string]string // by source: errNATS, errReference, errEvent
	scopes      map[events.Scope]*scopeEntry
	scores      *projector.Scores

	changed chan struct{} // cap 1
}

// scopeEntry is one scope's page of the status book.
type scopeEntry struct {
	known       bool // desired state read
	desired     uint64
	deployed    bool // the desired state has a spec or a removal
	applied     uint64
	reconciling bool
	phase       events.Phase // of the last reconcile; "" before the first
	resultRev   uint64       // the revision the last reconcile was for
	reconciled  bool         // a reconcile finished: backends are known
	replicas    []events.ReplicaStatus
	backends    []string
	slots       map[string]int // the replica index of each backend
	canary      map[string]int // the canary replica index of each canary backend
	backendsRev uint64
	// backendsD is the desired state the backends are of: a later one
	// that runs the same replicas (a canary's shift, a pause) takes over
	// its report at once, without a reconcile.
	backendsD deploy.Desired
	// traffic is the latest desired state's: balancers act on a shift as
	// soon as it is read, and on an abort before its replicas stop.
	traffic    *events.Traffic
	hosts      []string // the virtual hosts at backendsRev, for balancers
	healthPath string
	cache      *events.CachePolicy
	removed    bool        // backendsRev is a removal
	err        string      // last reconcile error
	eventErr   string      // last skipped event of the scope
	head       events.Mark // the last message of the history read
	paused     string      // why a rollout waits for its backends to be acknowledged
	analysis   *events.AnalysisStatus
	exits      exitNotes // replicas that exited and were replaced, shown beside their replacements
}

func newStatusBook(node, advertise, runtime, version string, interval time.Duration, now time.Time) *statusBook {
	return &statusBook{
		node: node, advertise: advertise, runtime: runtime, version: version, interval: interval, started: now,
		scopes:   map[events.Scope]*scopeEntry{},
		nodeErrs: map[string]string{},
		scores:   projector.NewScores(),
		changed:  make(chan struct{}, 1),
	}
}

func (s *statusBook) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// update runs fn under the lock and pokes the reporter.
func (s *statusBook) update(fn func()) {
	s.mu.Lock()
	fn()
	s.mu.Unlock()
	s.poke()
}

func (s *statusBook) setScopes(scopes []events.Scope) {
	s.update(func() {
		keep := map[events.Scope]bool{}
		for _, sc := range scopes {
			keep[sc] = true
			if s.scopes[sc] == nil {
				s.scopes[sc] = &scopeEntry{}
			}
		}
		for sc := range s.scopes {
			if !keep[sc] {
				delete(s.scopes, sc)
			}
		}
	})
}

func (s *statusBook) scope(sc events.Scope) *scopeEntry {
	st := s.scopes[sc]
	if st == nil {
		st = &scopeEntry{}
		s.scopes[sc] = st
	}
	return st
}

func (s *statusBook) setDesired(d deploy.Desired) {
	s.update(func() {
		st := s.scope(d.Scope)
		st.known, st.desired, st.deployed = true, d.Revision, d.Spec != nil || d.Removed
		st.traffic = d.Traffic
		if st.reconciled && d.Revision > st.backendsRev && !runsOtherwise(st.backendsD, d) {
			st.backendsRev, st.backendsD = d.Revision, d
		}
	})
}

// setAnalysis records what the scope's canary analysis does on this node
// (nil: it runs none).
func (s *statusBook) setAnalysis(sc events.Scope, a *events.AnalysisStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.scopes[sc]; st != nil {
		st.analysis = a
	}
}

// forgetScopes marks every scope's desired state as not read: nothing
// reports converged until it is read again.
func (s *statusBook) forgetScopes() {
	s.update(func() {
		for _, st := range s.scopes {
			st.known, st.head = false, events.Mark{}
		}
	})
}

// unknownScopes names the scopes whose desired state was not read yet:
// their running replicas are left alone until it is.
func (s *statusBook) unknownScopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sc := range sortedScopes(s.scopes) {
		if !s.scopes[sc].known {
			out = append(out, sc.String())
		}
	}
	return out
}

// setHead records the last message of sc's history that was read.
func (s *statusBook) setHead(sc events.Scope, m events.Mark) {
	s.update(func() { s.scope(sc).head = m })
}

func (s *statusBook) setReconciling(sc events.Scope, on bool) {
	s.update(func() { s.scope(sc).reconciling = on })
}

// setResult records a finished reconcile of d.
func (s *statusBook) setResult(d deploy.Desired, res deploy.Result, err error) {
	s.update(func() {
		st := s.scope(d.Scope)
		st.reconciled, st.phase, st.resultRev = true, res.Phase, d.Revision
		st.replicas = res.ReplicaStatuses(s.advertise)
		st.exits.show(res.Exits, st.replicas)
		st.backends, st.slots, st.canary = slices.Clone(res.Backends), maps.Clone(res.Slots), maps.Clone(res.Canary)
		// What balancers route comes from the same revision as the
		// backends. A newer revision that runs the same replicas may have
		// taken the report over meanwhile (setDesired): it stays.
		if d.Revision >= st.backendsRev {
			st.backendsRev, st.backendsD = d.Revision, d
		}
		st.hosts, st.healthPath, st.cache, st.removed = nil, "", nil, d.Removed
		if d.Spec != nil {
			st.hosts, st.healthPath, st.cache = slices.Clone(d.Spec.Hosts), d.Spec.HealthPath, d.Spec.Cache
		}
		st.err = ""
		switch {
		case err != nil:
			st.err = err.Error()
		case res.Phase == events.PhaseFailed:
			st.err = res.Reason
		case res.Phase == events.PhaseConverged || res.Phase == events.PhaseRemoved:
			st.applied = d.Revision
		}
		if st.applied == 0 {
			// After a restart, before the first converged reconcile: the
			// oldest revision still running is what was applied.
			for _, r := range st.replicas {
				if st.applied == 0 || r.Revision < st.applied {
					st.applied = r.Revision
				}
			}
		}
	})
}

// setObserved records replicas seen without reconciling (desired state
// unknown): the status shows what runs, and nothing is changed.
func (s *statusBook) setObserved(sc events.Scope, reps []deploy.Replica) {
	res := deploy.Result{Replicas: reps}
	s.update(func() {
		st := s.scope(sc)
		st.replicas = res.ReplicaStatuses(s.advertise)
	})
}

// setBackends records a rollout's change of a scope's serving backends.
func (s *statusBook) setBackends(sc events.Scope, b deploy.Backends) {
	s.update(func() {
		st := s.scope(sc)
		st.backends, st.slots, st.canary = slices.Clone(b.Addrs), maps.Clone(b.Slots), maps.Clone(b.Canary)
		st.reconciled = true
	})
}

func (s *statusBook) setEventError(sc events.Scope, err error) {
	s.update(func() {
		if sc.IsZero() || s.scopes[sc] == nil {
			s.nodeErrs[errEvent] = err.Error()
			return
		}
		s.scopes[sc].eventErr = err.Error()
	})
}

// clearEventError is called for every event folded: it pokes the reporter
// only when there was an error to clear, or a catch-up would publish a
// status per event.
func (s *statusBook) clearEventError(sc events.Scope) {
	s.mu.Lock()
	st := s.scopes[sc]
	changed := st != nil && st.eventErr != ""
	if changed {
		st.eventErr = ""
	}
	s.mu.Unlock()
	if changed {
		s.poke()
	}
}

// Sources of node errors: each keeps its own last error until it clears it.
const (
	errNATS      = "nats"
	errReference = "reference"
	errDiverged  = "diverged"
	errEvent     = "event"
)

func (s *statusBook) setNodeError(source, msg string) {
	s.update(func() {
		if msg == "" {
			delete(s.nodeErrs, source)
			return
		}
		s.nodeErrs[source] = msg
	})
}

func (s *statusBook) nodeError() string {
	var msgs []string
	for _, src := range []string{errReference, errNATS, errEvent} {
		if m := s.nodeErrs[src]; m != "" {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

func (s *statusBook) setDrained(drained bool, reason string) {
	s.update(func() { s.drained, s.drainReason = drained, reason })
}

func (s *statusBook) takeScore(r events.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scores.Take(r)
}

// status is the phase and error the status shows for a scope.
func (st *scopeEntry) status() (events.Phase, string) {
	errMsg := st.err
	if errMsg == "" {
		errMsg = st.eventErr
	}
	if st.paused != "" {
		errMsg = st.paused
	}
	switch {
	case !st.known:
		if errMsg == "" {
			errMsg = "desired state not read yet"
		}
		return events.PhaseProgressing, errMsg
	case !st.deployed:
		return events.PhaseConverged, errMsg // nothing was ever deployed
	case st.phase == "" || st.resultRev != st.desired:
		return events.PhaseProgressing, errMsg
	}
	return st.phase, errMsg
}

// nodeStatus is the heartbeat the reporter publishes.
func (s *statusBook) nodeStatus(now time.Time) *events.NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := &events.NodeStatus{
		Node: s.node, Time: now.UTC(), Started: s.started.UTC(), Runtime: s.runtime, Drained: s.drained,
		Interval: events.Duration(s.interval), Version: s.version, Error: s.nodeError(),
		Scopes: []events.ScopeStatus{},
	}
	for _, sc := range sortedScopes(s.scopes) {
		st := s.scopes[sc]
		phase, errMsg := st.status()
		status := events.ScopeStatus{
			Scope: sc, Desired: st.desired, Applied: st.applied, Phase: phase,
			Replicas: slices.Clone(st.replicas), Error: errMsg,
		}
		if st.head.Sequence > 0 {
			head := st.head
			status.Head = &head
		}
		if st.analysis != nil {
			an := *st.analysis
			status.Analysis = &an
		}
		ns.Scopes = append(ns.Scopes, status)
	}
	return ns
}

// backendsReports returns one report per scope whose backends are known.
func (s *statusBook) backendsReports(now time.Time) []*events.BackendsReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*events.BackendsReport
	for _, sc := range sortedScopes(s.scopes) {
		if r := s.backendsReportLocked(sc, now); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// backendsReport is the report of sc's backends, or nil while they are
// not known.
func (s *statusBook) backendsReport(sc events.Scope, now time.Time) *events.BackendsReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backendsReportLocked(sc, now)
}

func (s *statusBook) backendsReportLocked(sc events.Scope, now time.Time) *events.BackendsReport {
	st := s.scopes[sc]
	if st == nil || !st.reconciled {
		return nil
	}
	b := slices.Clone(st.backends)
	slices.Sort(b)
	if b == nil {
		b = []string{}
	}
	var slots, canary map[string]int
	if len(st.slots) > 0 {
		slots = maps.Clone(st.slots)
	}
	if len(st.canary) > 0 {
		canary = maps.Clone(st.canary)
	}
	var traffic *events.Traffic
	if !st.traffic.IsZero() {
		t := *st.traffic
		traffic = &t
	}
	return &events.BackendsReport{Node: s.node, Scope: sc, Revision: st.backendsRev, Backends: b, Slots: slots, Canary: canary, Time: now.UTC(),
		Hosts: slices.Clone(st.hosts), Removed: st.removed, HealthPath: st.healthPath, Cache: st.cache, Traffic: traffic}
}

// setPaused records why a rollout of sc waits, "" when it goes on.
func (s *statusBook) setPaused(sc events.Scope, reason string) {
	s.update(func() { s.scope(sc).paused = reason })
}

// checkView is the state an agent-check answer is derived from.
func (s *statusBook) checkView() checkView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := checkView{Node: s.node, Drained: s.drained, DrainReason: s.drainReason}
	for _, sc := range sortedScopes(s.scopes) {
		st := s.scopes[sc]
		phase, reason := st.status()
		cs := checkScope{Scope: sc, Phase: phase, Reason: reason, Scores: map[string]int{}}
		for _, r := range st.replicas {
			cs.Replicas = append(cs.Replicas, checkReplica{Index: r.Index, Canary: r.Canary, Backend: r.Backend, Healthy: r.Healthy, State: r.State})
			// The latest score of the replica's address or of its slot,
			// as balancers weigh it.
			addr, found := s.scores.Lookup(sc, r.Backend)
			slotName := events.Slot(s.node, r.Index)
			if r.Canary {
				slotName = events.CanarySlot(s.node, r.Index)
			}
			if slot, ok := s.scores.Lookup(sc, slotName); ok && (!found || slot.Sequence > addr.Sequence) {
				addr, found = slot, true
			}
			if found {
				cs.Scores[r.Backend] = addr.Value
			}
		}
		v.Scopes = append(v.Scopes, cs)
	}
	return v
}

func sortedScopes[V any](m map[events.Scope]V) []events.Scope {
	out := make([]events.Scope, 0, len(m))
	for sc := range m {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b events.Scope) int { return strings.Compare(a.String(), b.String()) })
	return out
}
