package balancer

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// poolWith builds a one-scope table with the given backend→score (-1: no
// score) and returns its pool, the folded state and the registry, so a test
// can rebuild it as the builder would.
func poolWith(t *testing.T, scores map[string]int) (*Pool, *folded, *registry) {
	t.Helper()
	f, reg := newFolded(), newRegistry()
	var addrs []string
	for a := range scores {
		addrs = append(addrs, a)
	}
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: addrs}))
	for a, s := range scores {
		if s >= 0 {
			setScore(t, f, a, s)
		}
	}
	return build(f, reg).Pool(web), f, reg
}

func setScore(t *testing.T, f *folded, addr string, s int) {
	t.Helper()
	e := &events.Event{Kind: events.KindBackendScored, Scope: web, Time: time.Now(), Data: &events.BackendScored{Backend: addr, Score: s}}
	if err := f.applyScore(e); err != nil {
		t.Fatal(err)
	}
}

func build(f *folded, reg *registry) *Table {
	return buildTable(f, buildOptions{defaultScore: DefaultDefaultScore}, time.Now(), reg)
}

func countPicks(p *Pool, n int) map[string]int {
	got := make(map[string]int)
	now := time.Now().UnixNano()
	for range n {
		got[p.Pick(now)]++
	}
	return got
}

// checkShares fails unless each backend's share of n picks is within tol
// (absolute, as a fraction of n) of its weight's share.
func checkShares(t *testing.T, got map[string]int, weights map[string]int, n int, tol float64) {
	t.Helper()
	total := 0
	for _, w := range weights {
		total += w
	}
	for a, w := range weights {
		want := float64(w) / float64(total)
		share := float64(got[a]) / float64(n)
		if math.Abs(share-want) > tol {
			t.Errorf("%s got %.4f of %d picks, want %.4f±%.2f (all: %v)", a, share, n, want, tol, got)
		}
	}
}

func TestPickDistributionMatchesScores(t *testing.T) {
	const n = 100_000
	for _, weights := range []map[string]int{
		{"10.0.0.1:80": 75, "10.0.0.2:80": 25},
		{"10.0.0.1:80": 50, "10.0.0.2:80": 30, "10.0.0.3:80": 20},
		{"10.0.0.1:80": 7, "10.0.0.2:80": 13, "10.0.0.3:80": 80, "10.0.0.4:80": 1},
		{"10.0.0.1:80": 100, "10.0.0.2:80": 100, "10.0.0.3:80": 100},
	} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			p, _, _ := poolWith(t, weights)
			got := countPicks(p, n)
			checkShares(t, got, weights, n, 0.01)
			// Smooth WRR is exact, far tighter than 1%: off by at most a
			// few picks per backend.
			total := 0
			for _, w := range weights {
				total += w
			}
			for a, w := range weights {
				if d := math.Abs(float64(got[a]) - float64(n*w)/float64(total)); d > float64(len(weights)) {
					t.Errorf("%s: %d picks, exact share %.1f", a, got[a], float64(n*w)/float64(total))
				}
			}
		})
	}
}

func TestPickIsSmooth(t *testing.T) {
	p, _, _ := poolWith(t, map[string]int{"a.internal:1": 3, "b.internal:1": 1})
	// 3:1 interleaves: never more than 3 of a in a row.
	run, now := 0, time.Now().UnixNano()
	for range 400 {
		if p.Pick(now) == "a.internal:1" {
			run++
			if run > 3 {
				t.Fatal("more than 3 picks of a in a row: not smooth")
			}
		} else {
			run = 0
		}
	}
}

func TestWeightChangeShiftsAndKeepsOthersState(t *testing.T) {
	a, b, c := "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"
	p, f, reg := poolWith(t, map[string]int{a: 20, b: 30, c: 50})
	countPicks(p, 7) // leave the round-robin mid-cycle

	before := map[string]int64{}
	states := map[string]*backendState{}
	for _, be := range p.Backends {
		before[be.Addr], states[be.Addr] = be.st.current, be.st
	}
	setScore(t, f, a, 70)
	p2 := build(f, reg).Pool(web)
	for _, be := range p2.Backends {
		if be.st != states[be.Addr] {
			t.Fatalf("%s got a new state on rebuild", be.Addr)
		}
		if be.Addr != a && be.st.current != before[be.Addr] {
			t.Fatalf("%s: current %d changed to %d by a weight change of %s", be.Addr, before[be.Addr], be.st.current, a)
		}
	}
	const n = 100_000
	checkShares(t, countPicks(p2, n), map[string]int{a: 70, b: 30, c: 50}, n, 0.01)

	// A new backend joins: the others keep their state too.
	for _, be := range p2.Backends {
		before[be.Addr] = be.st.current
	}
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n2", Scope: web, Backends: []string{"10.0.0.4:80"}}))
	p3 := build(f, reg).Pool(web)
	for _, be := range p3.Backends {
		if old, ok := before[be.Addr]; ok && be.st.current != old {
			t.Fatalf("%s: current changed when a backend joined", be.Addr)
		}
	}
}

func TestScoreZeroGetsNoPicks(t *testing.T) {
	p, _, _ := poolWith(t, map[string]int{"10.0.0.1:80": 0, "10.0.0.2:80": 40})
	got := countPicks(p, 1000)
	if got["10.0.0.1:80"] != 0 || got["10.0.0.2:80"] != 1000 {
		t.Fatalf("picks %v", got)
	}
	p, _, _ = poolWith(t, map[string]int{"10.0.0.1:80": 0})
	if got := p.Pick(time.Now().UnixNano()); got != "" {
		t.Fatalf("all weights 0, picked %q", got)
	}
}

func TestUnscoredBackendGetsDefaultWeight(t *testing.T) {
	p, _, _ := poolWith(t, map[string]int{"10.0.0.1:80": -1, "10.0.0.2:80": 50})
	const n = 30_000
	checkShares(t, countPicks(p, n), map[string]int{"10.0.0.1:80": 100, "10.0.0.2:80": 50}, n, 0.01)
}

func TestDeadBackendIsSkippedUntilItsTTL(t *testing.T) {
	p, _, _ := poolWith(t, map[string]int{"10.0.0.1:80": 50, "10.0.0.2:80": 50})
	now := time.Unix(1000, 0)
	p.Backends[0].st.markDead(now.Add(30 * time.Second))
	for range 100 {
		if got := p.Pick(now.UnixNano()); got != "10.0.0.2:80" {
			t.Fatalf("picked %q while 10.0.0.1 is dead", got)
		}
	}
	later := now.Add(30 * time.Second).UnixNano()
	got := map[string]int{}
	for range 100 {
		got[p.Pick(later)]++
	}
	if got["10.0.0.1:80"] != 50 {
		t.Fatalf("after the TTL: %v", got)
	}
}
