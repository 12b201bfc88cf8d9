package balancer

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

func deployed(sc events.Scope, rev uint64, hosts ...string) *events.Event {
	return &events.Event{Kind: events.KindDeployed, Scope: sc, Revision: rev, ID: "d", Data: &events.Deployed{Spec: events.Spec{Image: "x:1", Hosts: hosts}}}
}

func TestBuildWeights(t *testing.T) {
	f := newFolded()
	mustApply(t, f, deployed(web, 1, "web.example.com"))
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: []string{"10.0.0.1:80", "10.0.0.2:80"}}))
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n2", Scope: web, Backends: []string{"10.0.0.3:80"}}))
	old := time.Now().Add(-time.Hour)
	for addr, s := range map[string]int{"10.0.0.1:80": 75, "10.0.0.3:80": 40} {
		if err := f.applyScore(&events.Event{Kind: events.KindBackendScored, Scope: web, Time: old, Data: &events.BackendScored{Backend: addr, Score: s}}); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, f, &events.Event{Kind: events.KindNodeDrained, Node: "n2", Data: &events.NodeDrained{}})

	weights := func(opts buildOptions) map[string]int {
		tb := buildTable(f, opts, time.Now(), newRegistry())
		out := map[string]int{}
		for _, b := range tb.Pool(web).Backends {
			out[b.Addr] = b.Weight
		}
		return out
	}
	got := weights(buildOptions{defaultScore: 100})
	want := map[string]int{"10.0.0.1:80": 75, "10.0.0.2:80": 100, "10.0.0.3:80": 0}
	if !equalMaps(got, want) {
		t.Fatalf("weights %v, want %v", got, want)
	}
	// Scores older than the max age fall back to the default.
	got = weights(buildOptions{defaultScore: 60, maxAge: time.Minute})
	want = map[string]int{"10.0.0.1:80": 60, "10.0.0.2:80": 60, "10.0.0.3:80": 0}
	if !equalMaps(got, want) {
		t.Fatalf("with max age: weights %v, want %v", got, want)
	}
	// Undrain: n2's backend is back at its score.
	mustApply(t, f, &events.Event{Kind: events.KindNodeUndrained, Node: "n2", Data: &events.NodeUndrained{}})
	if got := weights(buildOptions{defaultScore: 100}); got["10.0.0.3:80"] != 40 {
		t.Fatalf("after undrain: %v", got)
	}
}

func TestBuildRemovedScopeKeepsItsHostsWithoutBackends(t *testing.T) {
	f := newFolded()
	mustApply(t, f, deployed(web, 1, "web.example.com"))
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: []string{"10.0.0.1:80"}}))
	mustApply(t, f, &events.Event{Kind: events.KindRemoved, Scope: web, Revision: 2, ID: "r", Data: &events.Removed{}})
	tb := buildTable(f, buildOptions{defaultScore: 100}, time.Now(), newRegistry())
	if p := tb.Route("web.example.com"); p == nil || !p.Removed || len(p.Backends) != 0 {
		t.Fatalf("a removed scope's host must stay routed, with no backends (503):\n%s", tb)
	}
	// A live scope that claims the host takes it from the removed one.
	mustApply(t, f, deployed(api, 1, "web.example.com"))
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: api, Backends: []string{"10.0.0.2:80"}}))
	tb = buildTable(f, buildOptions{defaultScore: 100}, time.Now(), newRegistry())
	if p := tb.Route("web.example.com"); p == nil || p.Scope != api || len(tb.conflicts) != 0 {
		t.Fatalf("the live scope did not take the removed scope's host:\n%s", tb)
	}
	f = newFolded()
	mustApply(t, f, deployed(web, 1, "web.example.com"))
	mustApply(t, f, &events.Event{Kind: events.KindRemoved, Scope: web, Revision: 2, ID: "r", Data: &events.Removed{}})
	mustApply(t, f, deployed(web, 3, "web.example.com"))
	tb = buildTable(f, buildOptions{defaultScore: 100}, time.Now(), newRegistry())
	if tb.Route("web.example.com") == nil {
		t.Fatalf("redeployed scope not routed:\n%s", tb)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	// The same reports and events applied in a different order of
	// independent subjects give the same digest; host conflicts resolve by
	// scope name, not by arrival.
	build := func(order []int) *Table {
		f := newFolded()
		steps := []func(){
			func() { mustApply(t, f, deployed(web, 1, "shared.example.com", "*.web.example.com")) },
			func() { mustApply(t, f, deployed(api, 1, "shared.example.com", "api.example.com")) },
			func() {
				f.applyReport(reportRecord(&events.BackendsReport{Node: "n2", Scope: web, Backends: []string{"10.0.0.9:80", "10.0.0.2:80"}}))
			},
			func() {
				f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: []string{"10.0.0.1:80", "10.0.0.1:80"}}))
			},
			func() {
				f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: api, Backends: []string{"10.0.1.1:80"}}))
			},
		}
		for _, i := range order {
			steps[i]()
		}
		return buildTable(f, buildOptions{defaultScore: 100, defaultScope: api}, time.Now(), newRegistry())
	}
	a, b := build([]int{0, 1, 2, 3, 4}), build([]int{4, 3, 1, 2, 0})
	if a.Digest() != b.Digest() {
		t.Fatalf("digests differ:\n%s\n---\n%s", a, b)
	}
	if p := a.Route("shared.example.com"); p == nil || p.Scope != api {
		t.Fatalf("shared host: want acme.prod.api (first by name)")
	}
	if !strings.Contains(a.String(), "conflict shared.example.com") {
		t.Fatalf("conflict not shown:\n%s", a)
	}
	if len(a.Pool(web).Backends) != 3 {
		t.Fatalf("duplicates not folded:\n%s", a)
	}
}

// The balancer's folds take only accepted records: a report or a drain
// whose body disagrees with its subject changes nothing.
func TestFoldsTakeOnlyAcceptedRecords(t *testing.T) {
	f := newFolded()
	body, _ := json.Marshal(events.BackendsReport{Node: "n2", Scope: web, Backends: []string{"10.0.0.9:80"}})
	r := events.Interpret(events.Message{Stream: events.BackendsStream, Subject: events.BackendsSubject(web, "n1"), Sequence: 1, Time: time.Now(), Data: body})
	if err := f.applyReport(r); !errors.Is(err, events.ErrDisagrees) || len(f.reports) != 0 {
		t.Fatalf("report for n2 on n1's subject: %v, %v", err, f.reports)
	}
	drain, _ := events.Encode(&events.Event{Schema: 1, ID: "d", Node: "n2", Revision: 1, Time: time.Now(), Actor: "x", Data: &events.NodeDrained{}})
	err := f.applyNode(events.Message{Stream: events.EventsStream, Subject: events.NodeSubject("n1", events.KindNodeDrained, "x"), Sequence: 2, Time: time.Now(), Data: drain})
	if !errors.Is(err, events.ErrDisagrees) || len(f.drained) != 0 {
		t.Fatalf("drain of n2 on n1's subject: %v, %v", err, f.drained)
	}
	if err := f.applyNode(events.Message{Stream: events.EventsStream, Subject: events.NodeSubject("n2", events.KindNodeDrained, "x"), Sequence: 3, Time: time.Now(), Data: drain}); err != nil || !f.drained["n2"] {
		t.Fatalf("drain of n2: %v, %v", err, f.drained)
	}
}

func mustApply(t *testing.T, f *folded, e *events.Event) {
	t.Helper()
	if err := f.applyEvent(e); err != nil {
		t.Fatal(err)
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A scope's hosts and removal are what its reports at the highest revision
// say (their hosts unioned, removed when all of them say so); its backends
// are every node's, whatever revision it reports.
func TestRouteFromReports(t *testing.T) {
	type rep = events.BackendsReport
	cases := []struct {
		name     string
		reports  []rep
		hosts    []string
		removed  bool
		backends []string
	}{{
		name: "nodes at one revision: hosts unioned",
		reports: []rep{
			{Node: "n1", Revision: 2, Hosts: []string{"a.example.com"}, Backends: []string{"10.0.0.1:80"}},
			{Node: "n2", Revision: 2, Hosts: []string{"b.example.com", "a.example.com"}, Backends: []string{"10.0.0.2:80"}},
		},
		hosts: []string{"a.example.com", "b.example.com"}, backends: []string{"10.0.0.1:80", "10.0.0.2:80"},
	}, {
		name: "a node catching up does not roll the hosts back",
		reports: []rep{
			{Node: "n1", Revision: 3, Hosts: []string{"new.example.com"}, Backends: []string{"10.0.0.1:80"}},
			{Node: "n2", Revision: 2, Hosts: []string{"old.example.com"}, Backends: []string{"10.0.0.2:80"}},
		},
		hosts: []string{"new.example.com"}, backends: []string{"10.0.0.1:80", "10.0.0.2:80"},
	}, {
		name: "removed at the highest revision: hosts kept, no backends",
		reports: []rep{
			{Node: "n1", Revision: 4, Hosts: []string{"a.example.com"}, Removed: true},
			{Node: "n2", Revision: 3, Hosts: []string{"a.example.com"}, Backends: []string{"10.0.0.2:80"}},
		},
		hosts: []string{"a.example.com"}, removed: true,
	}, {
		name: "removed only when every report at that revision says so",
		reports: []rep{
			{Node: "n1", Revision: 4, Hosts: []string{"a.example.com"}, Removed: true},
			{Node: "n2", Revision: 4, Hosts: []string{"a.example.com"}, Backends: []string{"10.0.0.2:80"}},
		},
		hosts: []string{"a.example.com"}, backends: []string{"10.0.0.2:80"},
	}, {
		name:    "static backends alone: their hosts",
		reports: []rep{{Node: "static", Hosts: []string{"s.example.com"}, Backends: []string{"10.0.0.9:80"}}},
		hosts:   []string{"s.example.com"}, backends: []string{"10.0.0.9:80"},
	}, {
		name: "static backends beside an agent: the agent's hosts, both backends",
		reports: []rep{
			{Node: "static", Hosts: []string{"s.example.com"}, Backends: []string{"10.0.0.9:80"}},
			{Node: "n1", Revision: 1, Hosts: []string{"a.example.com"}, Backends: []string{"10.0.0.1:80"}},
		},
		hosts: []string{"a.example.com"}, backends: []string{"10.0.0.1:80", "10.0.0.9:80"},
	}, {
		name: "an empty report withdraws its node",
		reports: []rep{
			{Node: "n1", Revision: 5, Hosts: []string{"gone.example.com"}, Backends: []string{"10.0.0.1:80"}},
			{Node: "n2", Revision: 4, Hosts: []string{"a.example.com"}, Backends: []string{"10.0.0.2:80"}},
			{Node: "n1"},
		},
		hosts: []string{"a.example.com"}, backends: []string{"10.0.0.2:80"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFolded()
			for _, r := range c.reports {
				r.Scope = web
				if err := f.applyReport(reportRecord(&r)); err != nil {
					t.Fatal(err)
				}
			}
			p := buildTable(f, buildOptions{defaultScore: 100}, time.Now(), newRegistry()).Pool(web)
			var backends []string
			for _, b := range p.Backends {
				backends = append(backends, b.Addr)
			}
			if !slices.Equal(p.Hosts, c.hosts) || p.Removed != c.removed || !slices.Equal(backends, c.backends) {
				t.Fatalf("hosts %v removed %v backends %v, want %v %v %v", p.Hosts, p.Removed, backends, c.hosts, c.removed, c.backends)
			}
		})
	}
}
