package store_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// The interleaved benchmarks alternate hoist and raw JetStream operation by
// operation (or round by round), in alternating order, and report each
// side's rate from its median time and the ratio of the two. On a machine
// shared with other work the sequential sub-benchmarks of BenchmarkAppend*
// and BenchmarkRebuild can differ several-fold from one run to the next;
// interleaving puts both sides under the same load.

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func reportPair(b *testing.B, unit string, work float64, hoist, raw []time.Duration) {
	h, r := median(hoist), median(raw)
	b.ReportMetric(work/h.Seconds(), "hoist-"+unit)
	b.ReportMetric(work/r.Seconds(), "raw-"+unit)
	b.ReportMetric(float64(r)/float64(h), "hoist/raw")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppendInterleaved: one hoist append, one raw publish (same size,
// same stream settings, a Msg-Id each), alternating.
func BenchmarkAppendInterleaved(b *testing.B) {
	_, st, js := benchStore(b)
	ctx := context.Background()
	payload := samplePayload(b)
	benchDeploy(b, st, web)
	rawWeb := rawSubject(web)
	var hoist, raw []time.Duration
	for i := 0; b.Loop(); i++ {
		ops := [2]func() error{
			func() error {
				_, err := st.Append(ctx, scaleEvent(web, i), store.AppendOptions{})
				return err
			},
			func() error {
				_, err := js.Publish(ctx, rawWeb, payload, jetstream.WithMsgID("interleaved-"+strconv.Itoa(i)))
				return err
			},
		}
		for k := range 2 {
			side := (i + k) % 2
			t0 := time.Now()
			if err := ops[side](); err != nil {
				b.Fatal(err)
			}
			if side == 0 {
				hoist = append(hoist, time.Since(t0))
			} else {
				raw = append(raw, time.Since(t0))
			}
		}
	}
	reportPair(b, "appends/s", 1, hoist, raw)
}

// BenchmarkAppendPipelinedInterleaved: rounds of 64 concurrent appenders
// (hoist: one scope each; raw: one subject each), 10 appends per appender
// and round, hoist and raw rounds alternating.
func BenchmarkAppendPipelinedInterleaved(b *testing.B) {
	const inFlight, perRound = 64, 10
	_, st, js := benchStore(b)
	ctx := context.Background()
	payload := samplePayload(b)
	scopes := make([]events.Scope, inFlight)
	rawSubjects := make([]string, inFlight)
	for i := range scopes {
		scopes[i] = events.MustParseScope(fmt.Sprintf("bench.prod.p%d", i))
		rawSubjects[i] = rawSubject(scopes[i])
		benchDeploy(b, st, scopes[i])
	}
	round := func(r int, hoistSide bool) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range inFlight {
			wg.Go(func() {
				for i := range perRound {
					var err error
					if hoistSide {
						_, err = st.Append(ctx, scaleEvent(scopes[w], i), store.AppendOptions{})
					} else {
						_, err = js.Publish(ctx, rawSubjects[w], payload, jetstream.WithMsgID(fmt.Sprintf("pi-%d-%d-%d", r, w, i)))
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	var hoist, raw []time.Duration
	for r := 0; b.Loop(); r++ {
		first := r%2 == 0
		for _, h := range []bool{first, !first} {
			d := round(r, h)
			if h {
				hoist = append(hoist, d)
			} else {
				raw = append(raw, d)
			}
		}
	}
	reportPair(b, "appends/s", inFlight*perRound, hoist, raw)
}

// rebuildInterleaved alternates a hoist rebuild (decode and fold every
// event) and a raw ordered-consumer read of the same n events.
func rebuildInterleaved(b *testing.B, st *store.Store, js jetstream.JetStream, n int) {
	var hoist, raw []time.Duration
	for i := 0; b.Loop(); i++ {
		for k := range 2 {
			t0 := time.Now()
			if (i+k)%2 == 0 {
				rebuild(b, st, n)
				hoist = append(hoist, time.Since(t0))
			} else {
				readRaw(b, js, n)
				raw = append(raw, time.Since(t0))
			}
		}
	}
	reportPair(b, "events/s", float64(n), hoist, raw)
}
