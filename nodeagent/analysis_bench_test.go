package nodeagent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// statsHistory is what the stream holds for a scope with n balancers that
// published every 2s for two minutes: 64 messages each.
func statsHistory(n int, since time.Time) []*events.RequestStats {
	var out []*events.RequestStats
	for i := range 64 {
		for b := range n {
			at := since.Add(time.Duration(i-32) * 2 * time.Second)
			out = append(out, sample("lb-"+string(rune('a'+b)), "boot", at.Sub(t0), -time.Hour, uint64(100*i), 0, 5*time.Millisecond))
		}
	}
	return out
}

// BenchmarkAnalysisDecide is one decision from a full stats history of
// three balancers (192 messages): the pure part of each tick.
func BenchmarkAnalysisDecide(b *testing.B) {
	since := t0.Add(time.Minute)
	stats := statsHistory(3, since)
	v := canaryView{ID: 5, Share: 10, Since: since, Revision: 9,
		Auto: events.Analysis{Steps: []int{10, 50, 100}, Interval: events.Duration(time.Minute), MaxErrorRate: 0.01, MinRequests: 100}}
	now := since.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if decide(v, stats, now).kind != verdictShift {
			b.Fatal("no shift")
		}
	}
}

// BenchmarkAnalysisStep is what an owner does when a step is due, against
// an embedded server: read the scope's statistics (three balancers' full
// history), decide, and append the step conditional on the head. Each
// iteration is one published canary_shifted.
func BenchmarkAnalysisStep(b *testing.B) {
	srv := natstest.Start(b)
	st := srv.Store(b)
	ctx := context.Background()
	sc := canaryScopeName
	spec := events.Spec{Image: "web:1", Replicas: 1, Port: 8080}
	next := spec
	next.Image = "web:2"
	var head uint64
	for _, p := range []events.Payload{&events.Deployed{Spec: spec}, &events.CanaryStarted{Spec: next, Share: 10, Replicas: 1}} {
		e, err := st.Append(ctx, &events.Event{Scope: sc, Actor: "ci", Data: p}, store.AppendOptions{})
		if err != nil {
			b.Fatal(err)
		}
		head = e.Revision
	}
	since := time.Now().Add(-time.Minute)
	for _, s := range statsHistory(3, since) {
		s.CanaryID, s.Since = 2, since.Add(-time.Hour)
		if err := st.PublishRequestStats(ctx, sc, s); err != nil {
			b.Fatal(err)
		}
	}
	an := newAnalyst("node-1", "hoist-agent@node-1", slog.New(slog.DiscardHandler), time.Now, func(events.Scope, *events.AnalysisStatus) {})
	auto := events.Analysis{Steps: []int{10, 50, 100}, Interval: events.Duration(time.Second), MaxErrorRate: 0.01, MinRequests: 100}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v := canaryView{Scope: sc, ID: 2, Share: 10, Auto: auto, Since: since, Revision: head}
		stats, err := st.RequestStats(ctx, sc)
		if err != nil {
			b.Fatal(err)
		}
		vd := decide(v, stats, time.Now())
		if vd.kind != verdictShift {
			b.Fatalf("verdict %d: %s", vd.kind, vd.detail)
		}
		e, err := an.publish(ctx, st, v, vd)
		if err != nil {
			b.Fatal(err)
		}
		head = e.Revision
	}
}
