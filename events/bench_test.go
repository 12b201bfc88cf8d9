package events_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// The append and rebuild benchmarks run hoist and raw JetStream side by
// side against the same embedded server, so their ratio is what counts:
//
//	go test ./events -run '^$' -bench . -benchtime 2000x -count 5
//
// Raw publishes go to a stream with the same settings as hoist's config
// stream and carry messages of the same size.

func benchStore(b *testing.B) (*natstest.Server, *events.Store, jetstream.JetStream) {
	srv := natstest.Start(b)
	st := srv.Store(b)
	js := st.JetStream()
	_, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, DenyDelete: true, DenyPurge: true, AllowDirect: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	return srv, st, js
}

func scaleEvent(scope events.Scope, n int) *events.Event {
	return &events.Event{Scope: scope, Actor: "bench@host", Data: &events.Scaled{Replicas: n % 1000}}
}

// sampleSize is the encoded size of a typical scale event.
func samplePayload(b *testing.B) []byte {
	e := scaleEvent(web, 1)
	e.ID, e.Revision, e.Time = "0123456789abcdefghijkl", 1, time.Now()
	data, err := events.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkAppendSync(b *testing.B) {
	_, st, js := benchStore(b)
	ctx := context.Background()
	payload := samplePayload(b)
	st.Append(ctx, &events.Event{Scope: web, Data: &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1}}}, events.AppendOptions{})

	b.Run("hoist", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for i := 0; b.Loop(); i++ {
			if _, err := st.Append(ctx, scaleEvent(web, i), events.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for i := 0; b.Loop(); i++ {
			if _, err := js.Publish(ctx, "raw.web", payload, jetstream.WithMsgID(strconv.Itoa(i)+"-"+b.Name())); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendPipelined keeps 64 appends in flight. For hoist they go to
// 64 scopes (appends within one scope are conditional on its head, so they
// serialise by design); raw JetStream gets 64 concurrent publishers.
func BenchmarkAppendPipelined(b *testing.B) {
	const inFlight = 64
	_, st, js := benchStore(b)
	ctx := context.Background()
	payload := samplePayload(b)
	scopes := make([]events.Scope, inFlight)
	for i := range scopes {
		scopes[i] = events.MustParseScope(fmt.Sprintf("bench.prod.s%d", i))
		st.Append(ctx, &events.Event{Scope: scopes[i], Data: &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1}}}, events.AppendOptions{})
	}
	run := func(b *testing.B, publish func(worker, i int) error) {
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		var wg sync.WaitGroup
		per := b.N/inFlight + 1
		for w := range inFlight {
			wg.Go(func() {
				for i := range per {
					if err := publish(w, i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	b.Run("hoist", func(b *testing.B) {
		run(b, func(w, i int) error {
			_, err := st.Append(ctx, scaleEvent(scopes[w], i), events.AppendOptions{})
			return err
		})
	})
	b.Run("raw", func(b *testing.B) {
		run(b, func(w, i int) error {
			_, err := js.Publish(ctx, "raw.s"+strconv.Itoa(w), payload, jetstream.WithMsgID(fmt.Sprintf("%s-%d-%d", b.Name(), w, i)))
			return err
		})
	})
	b.Run("raw-async", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		ajs, _ := jetstream.New(st.Conn(), jetstream.WithPublishAsyncMaxPending(inFlight))
		for i := 0; b.Loop(); i++ {
			if _, err := ajs.PublishAsync("raw.async", payload, jetstream.WithMsgID(fmt.Sprintf("%s-%d", b.Name(), i))); err != nil {
				b.Fatal(err)
			}
		}
		<-ajs.PublishAsyncComplete()
	})
}

// BenchmarkRebuild folds a scope's whole history into desired state, against
// a raw ordered-consumer read of the same messages. HOIST_BENCH_EVENTS sets
// the history length (default 1,000,000).
func BenchmarkRebuild(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(getenv("HOIST_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	_, st, js := benchStore(b)
	ctx := context.Background()
	fillScope(b, st.Conn(), web, n)
	// One untimed read first, so that neither side pays for what the fill
	// left behind (blocks still being flushed and loaded, the fill's garbage):
	// without it the side that runs first looks up to 3x slower.
	readRaw(b, js, n)

	b.Run("hoist", func(b *testing.B) {
		for b.Loop() {
			h := projector.NewHistory(web)
			err := st.ScanScope(ctx, web, 0, func(e *events.Event) {
				if err := h.Apply(e); err != nil {
					b.Fatal(err)
				}
			}, func(u events.Unreadable) { b.Fatal(u) })
			if err != nil {
				b.Fatal(err)
			}
			if h.Revision() != uint64(n) {
				b.Fatalf("rebuilt to revision %d, want %d", h.Revision(), n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			readRaw(b, js, n)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("interleaved", func(b *testing.B) { rebuildInterleaved(b, st, js, n) })
}

// readRaw reads the scope's n messages through an ordered consumer,
// without decoding them.
func readRaw(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.ScopeFilter(web)}})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for seen := 0; seen < n; seen++ {
		if _, err := it.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// fillScope writes n valid events (a deploy, then scales) to a scope with
// async publishes: filling is not what is measured.
func fillScope(b *testing.B, nc *nats.Conn, scope events.Scope, n int) {
	b.Helper()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	now := time.Now()
	for rev := 1; rev <= n; rev++ {
		var p events.Payload = &events.Scaled{Replicas: rev % 1000}
		if rev == 1 {
			p = &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1, Port: 8080}}
		}
		e := &events.Event{ID: "fill-" + strconv.Itoa(rev), Scope: scope, Revision: uint64(rev), Time: now, Actor: "bench@host", Data: p}
		data, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		msg := &nats.Msg{Subject: events.ScopeSubject(scope, p.Kind()), Data: data, Header: nats.Header{}}
		msg.Header.Set(events.RevisionHeader, strconv.Itoa(rev))
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("fill did not complete")
	}
}
