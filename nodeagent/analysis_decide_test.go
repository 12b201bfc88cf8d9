package nodeagent

import (
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// sample is one balancer's counters at t0+at: canary requests, errors,
// and all of them in the latency bucket of lat.
func sample(balancer, boot string, at time.Duration, counting time.Duration, req, errs uint64, lat time.Duration) *events.RequestStats {
	side := func(n, e uint64) events.SideStats {
		l := make([]uint64, events.LatencyBuckets)
		l[bucketOf(lat)] = n
		return events.SideStats{Requests: n, Errors: e, Latency: l}
	}
	return &events.RequestStats{Balancer: balancer, Boot: boot, Time: t0.Add(at), Since: t0.Add(counting), CanaryID: 5,
		Canary: side(req, errs), Stable: side(3*req, 0)}
}

func bucketOf(d time.Duration) int {
	for i, b := range events.LatencyBounds {
		if d <= b {
			return i
		}
	}
	return len(events.LatencyBounds)
}

func TestDecide(t *testing.T) {
	auto := events.Analysis{Steps: []int{10, 25, 50, 100}, Interval: events.Duration(time.Minute), MaxErrorRate: 0.01,
		MaxP99: events.Duration(300 * time.Millisecond), MinRequests: 200}
	view := func(share int) canaryView {
		return canaryView{ID: 5, Share: share, Auto: auto, Since: t0, Revision: 9}
	}
	now := t0.Add(time.Minute)
	ms := time.Millisecond
	cases := []struct {
		name    string
		view    canaryView
		stats   []*events.RequestStats
		now     time.Time
		kind    verdictKind
		share   int
		reqs    uint64
		errs    uint64
		bal     int
		reason  string // a part of the reason, or of the detail while waiting
		p99Over time.Duration
	}{
		{name: "interval not over", view: view(10), now: t0.Add(59 * time.Second),
			stats: []*events.RequestStats{sample("lb", "a", -time.Second, -time.Hour, 0, 0, ms), sample("lb", "a", 58*time.Second, -time.Hour, 500, 0, ms)},
			kind:  verdictWait, reqs: 500, bal: 1, reason: "deciding at 10:01:00"},
		{name: "no stats at all", view: view(10), now: now, kind: verdictWait,
			reason: "analysis waiting: 0 of 200 requests (no balancer reported"},
		{name: "too few requests", view: view(10), now: now,
			stats: []*events.RequestStats{sample("lb", "a", -time.Second, -time.Hour, 100, 0, ms), sample("lb", "a", 59*time.Second, -time.Hour, 157, 0, ms)},
			kind:  verdictWait, reqs: 57, bal: 1, reason: "analysis waiting: 57 of 200 requests"},
		{name: "healthy: next step", view: view(10), now: now,
			stats: []*events.RequestStats{sample("lb", "a", -time.Second, -time.Hour, 1000, 3, 5*ms), sample("lb", "a", 59*time.Second, -time.Hour, 1640, 3, 5*ms)},
			kind:  verdictShift, share: 25, reqs: 640, bal: 1, reason: "step 25%: canary 5xx 0.0% over 640 requests, p99 5ms"},
		{name: "last step: promote", view: view(100), now: now,
			stats: []*events.RequestStats{sample("lb", "a", 59*time.Second, time.Second, 300, 0, ms)},
			kind:  verdictPromote, reqs: 300, bal: 1, reason: "promoted after step 100%"},
		{name: "5xx over the limit: abort", view: view(25), now: now,
			stats: []*events.RequestStats{sample("lb", "a", 0, -time.Hour, 0, 0, ms), sample("lb", "a", 50*time.Second, -time.Hour, 612, 29, ms)},
			kind:  verdictAbort, reqs: 612, errs: 29, bal: 1, reason: "canary 5xx 4.7% over 612 requests > 1%"},
		{name: "5xx exactly at the limit: within", view: view(25), now: now,
			stats: []*events.RequestStats{sample("lb", "a", 50*time.Second, 0, 200, 2, ms)},
			kind:  verdictShift, share: 50, reqs: 200, errs: 2, bal: 1},
		{name: "one 5xx past the limit", view: view(25), now: now,
			stats: []*events.RequestStats{sample("lb", "a", 50*time.Second, 0, 200, 3, ms)},
			kind:  verdictAbort, reqs: 200, errs: 3, bal: 1, reason: "canary 5xx 1.5% over 200 requests > 1%"},
		{name: "p99 over the limit: abort", view: view(10), now: now,
			stats: []*events.RequestStats{sample("lb", "a", 30*time.Second, 0, 612, 0, 400*ms)},
			kind:  verdictAbort, reqs: 612, bal: 1, reason: "canary p99 ", p99Over: 300 * ms},
		{name: "p99 exactly at the limit (the bucket's bound): within",
			view: canaryView{ID: 5, Share: 10, Since: t0, Auto: withP99(auto, 315*ms)}, now: now,
			stats: []*events.RequestStats{sample("lb", "a", 30*time.Second, 0, 612, 0, 315*ms)},
			kind:  verdictShift, share: 25, reqs: 612, bal: 1},
		{name: "balancers summed", view: view(10), now: now,
			stats: []*events.RequestStats{
				sample("lb-1", "a", -time.Second, -time.Hour, 50, 0, ms), sample("lb-2", "b", -time.Second, -time.Hour, 70, 0, ms),
				sample("lb-1", "a", 59*time.Second, -time.Hour, 150, 1, ms), sample("lb-2", "b", 59*time.Second, -time.Hour, 190, 0, ms)},
			kind: verdictShift, share: 25, reqs: 220, errs: 1, bal: 2},
		{name: "balancer restart counts from its new start", view: view(10), now: now,
			stats: []*events.RequestStats{
				sample("lb", "old", -time.Second, -time.Hour, 1000, 0, ms), sample("lb", "old", 20*time.Second, -time.Hour, 1100, 0, ms),
				sample("lb", "new", 30*time.Second, 25*time.Second, 40, 0, ms), sample("lb", "new", 59*time.Second, 25*time.Second, 150, 0, ms)},
			kind: verdictShift, share: 25, reqs: 250, bal: 1},
		{name: "restart that errs: the new boot's errors count", view: view(10), now: now,
			stats: []*events.RequestStats{
				sample("lb", "old", -time.Second, -time.Hour, 1000, 0, ms), sample("lb", "old", 20*time.Second, -time.Hour, 1100, 0, ms),
				sample("lb", "new", 59*time.Second, 25*time.Second, 150, 12, ms)},
			kind: verdictAbort, reqs: 250, errs: 12, bal: 1, reason: "canary 5xx 4.8% over 250 requests > 1%"},
		{name: "history aged out: counts from the first message", view: view(10), now: now,
			stats: []*events.RequestStats{sample("lb", "a", 10*time.Second, -time.Hour, 5000, 0, ms), sample("lb", "a", 59*time.Second, -time.Hour, 5300, 0, ms)},
			kind:  verdictShift, share: 25, reqs: 300, bal: 1},
		{name: "another canary's counts are not this one's", view: canaryView{ID: 6, Share: 10, Since: t0, Auto: auto}, now: now,
			stats: []*events.RequestStats{sample("lb", "a", 59*time.Second, 0, 5000, 0, ms)},
			kind:  verdictWait, reason: "0 of 200"},
		{name: "a silent balancer counts nothing", view: view(10), now: now,
			stats: []*events.RequestStats{sample("lb-gone", "a", -10*time.Second, -time.Hour, 5000, 0, ms), sample("lb", "b", 59*time.Second, 0, 210, 0, ms)},
			kind:  verdictShift, share: 25, reqs: 210, bal: 1},
		{name: "no minimum: zero requests step on", view: canaryView{ID: 5, Share: 10, Since: t0, Auto: withMin(auto, 0)}, now: now,
			kind: verdictShift, share: 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := decide(c.view, c.stats, c.now)
			if v.kind != c.kind || v.share != c.share {
				t.Fatalf("verdict %d share %d (%s%s), want %d share %d", v.kind, v.share, v.reason, v.detail, c.kind, c.share)
			}
			f := v.figures
			if f.Requests != c.reqs || f.Errors != c.errs || f.Balancers != c.bal {
				t.Errorf("figures %s (%d errors), want %d requests, %d errors from %d balancers", f.String(), f.Errors, c.reqs, c.errs, c.bal)
			}
			text := v.reason + v.detail
			if !strings.Contains(text, c.reason) {
				t.Errorf("reason %q, want it to hold %q", text, c.reason)
			}
			if c.p99Over > 0 && time.Duration(f.P99) <= c.p99Over {
				t.Errorf("p99 %s, want over %s", time.Duration(f.P99), c.p99Over)
			}
			if v.kind != verdictWait {
				if err := v.payload().Validate(); err != nil {
					t.Errorf("the event is invalid: %v", err)
				}
			}
		})
	}
}

func withP99(a events.Analysis, d time.Duration) events.Analysis {
	a.MaxP99 = events.Duration(d)
	return a
}
func withMin(a events.Analysis, n int) events.Analysis { a.MinRequests = n; return a }

func TestQuantile(t *testing.T) {
	h := make([]uint64, events.LatencyBuckets)
	if quantile(h, 0.99) != 0 {
		t.Fatal("empty histogram")
	}
	h[bucketOf(10*time.Millisecond)] = 99
	h[bucketOf(time.Second)] = 1
	if got := quantile(h, 0.99); got > 10*time.Millisecond || got < 8*time.Millisecond {
		t.Errorf("p99 of 99 fast and 1 slow = %s, want in the 10ms bucket", got)
	}
	h[bucketOf(time.Second)] = 2
	if got := quantile(h, 0.99); got < 800*time.Millisecond || got > time.Second {
		t.Errorf("p99 of 99 fast and 2 slow = %s, want in the 1s bucket", got)
	}
	h[events.LatencyBuckets-1] = 1000
	if got := quantile(h, 0.99); got != events.LatencyBounds[len(events.LatencyBounds)-1] {
		t.Errorf("p99 past the last bound = %s", got)
	}
}
