package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

func TestLatencyBucket(t *testing.T) {
	b := events.LatencyBounds
	last := len(b)
	cases := []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {-time.Second, 0}, {time.Millisecond, 0}, {time.Millisecond + 1, 1},
		{b[10], 10}, {b[10] - 1, 10}, {b[10] + 1, 11},
		{b[last-1], last - 1}, {b[last-1] + 1, last}, {time.Hour, last},
	}
	for _, c := range cases {
		if got := latencyBucket(c.d); got != c.want {
			t.Errorf("latencyBucket(%s) = %d, want %d", c.d, got, c.want)
		}
	}
}

// The recorder counts per side, counts 5xx (and only 5xx) as errors, and a
// snapshot is what the stats message carries and Validate accepts.
func TestCanaryCountsObserve(t *testing.T) {
	c := &canaryCounts{id: 7, since: time.Now()}
	for i := range 100 {
		status := http.StatusOK
		if i%20 == 0 {
			status = http.StatusBadGateway
		}
		c.observe(true, status, 3*time.Millisecond)
	}
	c.observe(false, http.StatusNotFound, 200*time.Millisecond)
	c.observe(false, 499, time.Minute)
	c.observe(false, http.StatusServiceUnavailable, 2*time.Hour)

	can, st := c.canary.snapshot(), c.stable.snapshot()
	if can.Requests != 100 || can.Errors != 5 || can.Latency[latencyBucket(3*time.Millisecond)] != 100 {
		t.Errorf("canary side: %d requests, %d errors, latency %v", can.Requests, can.Errors, can.Latency)
	}
	if st.Requests != 3 || st.Errors != 1 || st.Latency[events.LatencyBuckets-1] != 1 {
		t.Errorf("stable side: %d requests, %d errors (want 3, 1: a 404 and a 499 are no server errors), latency %v", st.Requests, st.Errors, st.Latency)
	}
	msg := events.RequestStats{Balancer: "lb", Boot: "x", Time: time.Now(), Since: c.since, CanaryID: c.id, Stable: st, Canary: can}
	if err := msg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The counters survive table rebuilds while the canary runs, and start
// again for a new canary.
func TestCanaryCountsFollowTheCanary(t *testing.T) {
	l := &scopeLive{}
	now := time.Now()
	a := l.canaryCounts(3, now)
	a.observe(true, 200, time.Millisecond)
	if b := l.canaryCounts(3, now.Add(time.Second)); b != a {
		t.Fatal("a rebuild for the same canary made new counters")
	}
	if b := l.canaryCounts(9, now); b == a || b.canary.requests.Load() != 0 || b.id != 9 {
		t.Fatal("a new canary kept the old one's counters")
	}
	if l.canaryCounts(0, now) != nil || l.canary != nil {
		t.Fatal("a scope without a canary still counts")
	}
}

// A balancer fed by NATS counts what it proxies per side and publishes it:
// a canary that answers 500 shows as errors on the canary side only.
func TestCanaryStatsPublished(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	b := natsBalancer(t, srv, func(c *Config) { c.Name, c.StatsInterval = "lb-test", 50*time.Millisecond })
	cs := &canaryScope{t: t, b: b, pub: &publisher{t: t, st: st},
		s1: newBackend(t, "s1", nil), s2: newBackend(t, "s2", nil),
		canary: newBackend(t, "canary", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })}
	proxy := httptest.NewUnstartedServer(b.Handler())
	proxy.Config.BaseContext = func(net.Listener) context.Context { return b.reqCtx }
	proxy.Start()
	t.Cleanup(proxy.Close)
	cs.base = proxy.URL

	c := &events.CanaryTraffic{ID: 2, Share: 50}
	cs.report(&events.Traffic{Canary: c}, true)
	cs.waitCanary(c, 3)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	cs.send(client, 100)

	natstest.Eventually(t, 10*time.Second, func() error {
		all, err := st.RequestStats(t.Context(), web)
		if err != nil {
			return err
		}
		if len(all) == 0 {
			return errors.New("no statistics yet")
		}
		s := all[len(all)-1]
		if s.Balancer != "lb-test" || s.Boot != b.boot || s.CanaryID != 2 {
			return fmt.Errorf("statistics of %s boot %s canary %d", s.Balancer, s.Boot, s.CanaryID)
		}
		if s.Canary.Requests != 50 || s.Canary.Errors != 50 || s.Stable.Requests != 50 || s.Stable.Errors != 0 {
			return fmt.Errorf("canary %d/%d, stable %d/%d (requests/errors), want 50/50 and 50/0",
				s.Canary.Requests, s.Canary.Errors, s.Stable.Requests, s.Stable.Errors)
		}
		return nil
	})
}

// BenchmarkCanaryObserve is the cost the canary statistics add to one
// proxied request (for docs/benchmarks.md).
func BenchmarkCanaryObserve(b *testing.B) {
	c := &canaryCounts{id: 1, since: time.Now()}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.observe(i&1 == 0, 200, time.Duration(i&1023)*time.Millisecond)
	}
}

// BenchmarkCanaryObserveParallel is the same from every core at once, on
// the counters of one scope: the contended case.
func BenchmarkCanaryObserveParallel(b *testing.B) {
	c := &canaryCounts{id: 1, since: time.Now()}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.observe(i&1 == 0, 200, time.Duration(i&1023)*time.Millisecond)
			i++
		}
	})
}
