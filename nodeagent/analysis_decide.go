package nodeagent

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The canary analysis's decision: pure, so that every case is a table
// test. Given the canary as folded at a revision, the time, and the
// statistics the balancers published, it says what to do: wait, shift to
// the next step, promote or abort, and with which figures and reason.

// canaryView is what the analysis decides on: the scope's running canary
// and the revision of the scope's head it was folded at. A decision is
// published only on that head.
type canaryView struct {
	Scope    events.Scope
	ID       uint64
	Share    int
	Auto     events.Analysis
	Since    time.Time // when the share last changed
	Revision uint64    // the scope's head when the view was folded
}

// viewOf is the analysis's view of a folded state, and false when the
// scope runs no canary with an analysis.
func viewOf(st projector.State) (canaryView, bool) {
	c := st.Canary
	if c == nil || c.Auto == nil || !st.Exists() {
		return canaryView{}, false
	}
	return canaryView{Scope: st.Scope, ID: c.ID, Share: c.Share, Auto: *c.Auto, Since: c.Since, Revision: st.Revision}, true
}

// verdictKind is what the analysis does.
type verdictKind int

const (
	verdictWait verdictKind = iota
	verdictShift
	verdictPromote
	verdictAbort
)

// verdict is one decision.
type verdict struct {
	kind    verdictKind
	share   int // for a shift
	reason  string
	figures events.Figures
	// detail says what a waiting analysis waits for; next is when it
	// decides, at the earliest.
	detail string
	next   time.Time
}

// payload is the event that carries v.
func (v verdict) payload() events.Payload {
	f := v.figures
	switch v.kind {
	case verdictShift:
		return &events.CanaryShifted{Share: v.share, Automatic: true, Reason: v.reason, Figures: &f}
	case verdictPromote:
		return &events.CanaryPromoted{Automatic: true, Reason: v.reason, Figures: &f}
	case verdictAbort:
		return &events.CanaryAborted{Automatic: true, Reason: v.reason, Figures: &f}
	}
	return nil
}

// decide is the analysis's decision on c at now, from every statistics
// message the balancers published (in stream order). Once the interval
// since the last step is over and the canary served MinRequests, it aborts
// over MaxErrorRate or MaxP99 (a value exactly at a limit is within it),
// else steps on, or promotes after the last step.
func decide(c canaryView, stats []*events.RequestStats, now time.Time) verdict {
	f := windowFigures(stats, c.ID, c.Since, now)
	a := c.Auto
	due := c.Since.Add(time.Duration(a.Interval))
	if now.Before(due) {
		return verdict{kind: verdictWait, figures: f, next: due,
			detail: fmt.Sprintf("analysis of step %d%%: deciding at %s; so far canary %s", c.Share, due.UTC().Format(time.TimeOnly), summary(f))}
	}
	if f.Requests < uint64(a.MinRequests) {
		detail := fmt.Sprintf("analysis waiting: %d of %d requests", f.Requests, a.MinRequests)
		if f.Balancers == 0 {
			detail += " (no balancer reported the canary's requests)"
		}
		return verdict{kind: verdictWait, figures: f, detail: detail, next: now}
	}
	rate := f.ErrorRate()
	if rate > a.MaxErrorRate {
		return verdict{kind: verdictAbort, figures: f,
			reason: fmt.Sprintf("canary 5xx %.1f%% over %d requests > %s", 100*rate, f.Requests, percent(a.MaxErrorRate))}
	}
	if a.MaxP99 > 0 && f.P99 > a.MaxP99 {
		return verdict{kind: verdictAbort, figures: f,
			reason: fmt.Sprintf("canary p99 %s over %d requests > %s", roundLatency(time.Duration(f.P99)), f.Requests, time.Duration(a.MaxP99))}
	}
	if next, ok := a.Next(c.Share); ok {
		return verdict{kind: verdictShift, share: next, figures: f,
			reason: fmt.Sprintf("step %d%%: canary %s", next, summary(f))}
	}
	return verdict{kind: verdictPromote, figures: f,
		reason: fmt.Sprintf("promoted after step %d%%: canary %s", c.Share, summary(f))}
}

// summary reads "5xx 0.0% over 640 requests, p99 12ms".
func summary(f events.Figures) string {
	s := fmt.Sprintf("5xx %.1f%% over %d requests", 100*f.ErrorRate(), f.Requests)
	if f.Requests > 0 {
		s += ", p99 " + roundLatency(time.Duration(f.P99)).String()
	}
	return s
}

// percent writes a fraction as the operator gave it: 0.01 as "1%".
func percent(fraction float64) string {
	return strconv.FormatFloat(100*fraction, 'f', -1, 64) + "%"
}

// roundLatency rounds a p99 read from histogram buckets to what it can
// tell: milliseconds, or 0.1 ms under 10 ms.
func roundLatency(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// windowFigures sums what every balancer served of canary id's canary side
// between since and now: per balancer and boot, the counters' last value
// minus their value at since. A boot with no message at or before since
// counts from zero if it began counting after since (a balancer that
// (re)started, or learnt of the canary, within the window), else from its
// first message (its earlier ones aged out of the stream: the window
// counts a little less).
func windowFigures(stats []*events.RequestStats, id uint64, since, now time.Time) events.Figures {
	type run struct{ base, last *events.RequestStats }
	type key struct{ balancer, boot string }
	runs := map[key]*run{}
	var order []key
	for _, s := range stats {
		if s.CanaryID != id || s.Time.After(now) {
			continue
		}
		k := key{s.Balancer, s.Boot}
		r := runs[k]
		if r == nil {
			r = &run{}
			runs[k] = r
			order = append(order, k)
			if s.Time.After(since) && s.Since.Before(since) {
				r.base = s // the messages before since are gone
			}
		}
		if !s.Time.After(since) {
			r.base = s
		}
		r.last = s
	}
	f := events.Figures{Window: events.Duration(now.Sub(since))}
	hist := make([]uint64, events.LatencyBuckets)
	balancers := map[string]bool{}
	for _, k := range order {
		r := runs[k]
		if !r.last.Time.After(since) {
			continue // nothing since the window began
		}
		balancers[k.balancer] = true
		last := &r.last.Canary
		var base *events.SideStats
		if r.base != nil {
			base = &r.base.Canary
		}
		f.Requests += delta(last.Requests, base, func(b *events.SideStats) uint64 { return b.Requests })
		f.Errors += delta(last.Errors, base, func(b *events.SideStats) uint64 { return b.Errors })
		for i := range hist {
			hist[i] += delta(last.Latency[i], base, func(b *events.SideStats) uint64 { return b.Latency[i] })
		}
	}
	f.Errors = min(f.Errors, f.Requests)
	f.Balancers = len(balancers)
	f.P99 = events.Duration(quantile(hist, 0.99))
	return f
}

// delta is v minus the base's value, never below zero (a boot's counters
// only grow; a message that says otherwise counts nothing).
func delta(v uint64, base *events.SideStats, of func(*events.SideStats) uint64) uint64 {
	if base == nil {
		return v
	}
	if b := of(base); b < v {
		return v - b
	}
	return 0
}

// quantile reads the q-quantile from a histogram over
// events.LatencyBounds, interpolating within its bucket; past the last
// bound it is the last bound. 0 for an empty histogram.
func quantile(hist []uint64, q float64) time.Duration {
	var total uint64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	bounds := events.LatencyBounds
	var cum uint64
	for i, n := range hist {
		if n == 0 || cum+n < rank {
			cum += n
			continue
		}
		if i >= len(bounds) {
			return bounds[len(bounds)-1]
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = bounds[i-1]
		}
		frac := float64(rank-cum) / float64(n)
		return lo + time.Duration(frac*float64(bounds[i]-lo))
	}
	return bounds[len(bounds)-1]
}
