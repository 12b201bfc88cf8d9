package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The score step: one backend at scoredAt, the other five at the default
// (100). Smooth weighted round-robin gives each backend exactly its weight
// in every run of total-weight picks, so one run of 550 answers should
// split 50/100/100/100/100/100; the tolerance only absorbs the odd retry.
const (
	scoredAt     = 50
	defaultScore = 100
	shareSlack   = 0.3 // relative
)

// checkScoreShares scores one backend at 50 and checks that the six
// replicas answer in score proportion.
func (s *scenario) checkScoreShares(t *testing.T) {
	t.Helper()
	c := s.c
	// backend address → node/index, from the agents' reports.
	byAddr := map[string]string{}
	eventually(t, 30*time.Second, "hoist status names 6 backends", func() error {
		views, err := c.status(t)
		if err != nil {
			return err
		}
		clear(byAddr)
		for _, v := range views {
			if v.Scope.String() != c.scope {
				continue
			}
			for _, r := range v.Replicas {
				if r.Backend != "" && r.Healthy {
					byAddr[r.Backend] = v.Node + "/" + strconv.Itoa(r.Index)
				}
			}
		}
		if len(byAddr) != 6 {
			return fmt.Errorf("%d backends: %v", len(byAddr), byAddr)
		}
		return nil
	})
	addrs := slices.Sorted(func(yield func(string) bool) {
		for a := range byAddr {
			if !yield(a) {
				return
			}
		}
	})
	scored := addrs[0]
	c.hoist(t, 0, "score", c.scope, scored, strconv.Itoa(scoredAt))
	eventually(t, 30*time.Second, "the balancer applies the score", func() error {
		p, err := c.table()
		if err != nil || p == nil {
			return fmt.Errorf("table: %v %v", p, err)
		}
		for _, be := range p.Backends {
			if be.Addr == scored && be.Weight == scoredAt {
				return nil
			}
		}
		return fmt.Errorf("%s not weighted %d: %+v", scored, scoredAt, p.Backends)
	})

	total := 5*defaultScore + scoredAt
	as := s.lg.collect(t, total, time.Minute)
	got := count(as, answer.who)
	var report []string
	for _, addr := range addrs {
		who := byAddr[addr]
		weight := defaultScore
		if addr == scored {
			weight = scoredAt
		}
		want := float64(len(as)) * float64(weight) / float64(total)
		report = append(report, fmt.Sprintf("%s (%s) weight %d: %d answers, want %.0f", who, addr, weight, got[who], want))
		if n := float64(got[who]); n < want*(1-shareSlack) || n > want*(1+shareSlack) {
			t.Errorf("%s (%s, weight %d) answered %d of %d requests, want %.0f ±%.0f%%", who, addr, weight, got[who], len(as), want, shareSlack*100)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d replicas answered, want 6: %v", len(got), got)
	}
	t.Logf("score shares over %d answers:\n  %s", len(as), strings.Join(report, "\n  "))
}

// markdown renders the figures as the table in docs/benchmarks.md.
func (s *scenario) markdown(runtime string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %s: step | converged in | measured | requests | failed |\n|---|---|---|---|---|\n", runtime)
	for _, f := range s.figs {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d |\n", f.step, f.converge.Round(10*time.Millisecond), f.convergeMeasures, f.sent, f.failed)
	}
	return b.String()
}
