package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// The append and rebuild benchmarks run hoist and raw JetStream side by
// side against the same embedded server, so their ratio is what counts:
//
//	go test ./events -run '^$' -bench . -benchtime 2000x -count 5
//
// Raw publishes go to a stream with the same settings as hoist's config
// stream, on subjects of the same layout as hoist's
// (raw.scope.<client>.<env>.<solution>.<kind>.<actor>, see rawSubject),
// and carry messages of the same size. They use a connection of their own:
// the Store no longer hands out its connection.

// benchActor is the actor of every benchmark event: one subject token.
const benchActor = "bench@host"

// benchStore starts a server, opens the store, and returns raw JetStream
// on a connection of its own, with the RAW stream set up.
func benchStore(b *testing.B) (*natstest.Server, *store.Store, jetstream.JetStream) {
	srv := natstest.Start(b)
	st := srv.Store(b)
	js := rawJS(b, srv)
	_, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, DenyDelete: true, DenyPurge: true, AllowDirect: true,
		MaxConsumers: store.MaxConsumers,
	})
	if err != nil {
		b.Fatal(err)
	}
	return srv, st, js
}

// rawSubject is hoist's subject for a scale event in scope, under the raw
// stream's root: the same tokens, the same length.
func rawSubject(scope events.Scope) string {
	return "raw" + strings.TrimPrefix(events.ScopeSubject(scope, events.KindScaled, benchActor), "hoist")
}

func scaleEvent(scope events.Scope, n int) *events.Event {
	return &events.Event{Scope: scope, Actor: benchActor, Data: &events.Scaled{Replicas: n % 1000}}
}

func benchDeploy(b *testing.B, st *store.Store, scope events.Scope) {
	b.Helper()
	e := &events.Event{Scope: scope, Actor: benchActor, Data: &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1}}}
	if _, err := st.Append(context.Background(), e, store.AppendOptions{}); err != nil {
		b.Fatal(err)
	}
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
	benchDeploy(b, st, web)
	rawWeb := rawSubject(web)

	b.Run("hoist", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for i := 0; b.Loop(); i++ {
			if _, err := st.Append(ctx, scaleEvent(web, i), store.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for i := 0; b.Loop(); i++ {
			if _, err := js.Publish(ctx, rawWeb, payload, jetstream.WithMsgID(strconv.Itoa(i)+"-"+b.Name())); err != nil {
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
	srv, st, js := benchStore(b)
	ctx := context.Background()
	payload := samplePayload(b)
	scopes := make([]events.Scope, inFlight)
	rawSubjects := make([]string, inFlight)
	for i := range scopes {
		scopes[i] = events.MustParseScope(fmt.Sprintf("bench.prod.s%d", i))
		rawSubjects[i] = rawSubject(scopes[i])
		benchDeploy(b, st, scopes[i])
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
			_, err := st.Append(ctx, scaleEvent(scopes[w], i), store.AppendOptions{})
			return err
		})
	})
	b.Run("raw", func(b *testing.B) {
		run(b, func(w, i int) error {
			_, err := js.Publish(ctx, rawSubjects[w], payload, jetstream.WithMsgID(fmt.Sprintf("%s-%d-%d", b.Name(), w, i)))
			return err
		})
	})
	b.Run("raw-async", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		ajs, err := jetstream.New(srv.Connect(b), jetstream.WithPublishAsyncMaxPending(inFlight))
		if err != nil {
			b.Fatal(err)
		}
		async := rawSubject(events.MustParseScope("bench.prod.async"))
		for i := 0; b.Loop(); i++ {
			if _, err := ajs.PublishAsync(async, payload, jetstream.WithMsgID(fmt.Sprintf("%s-%d", b.Name(), i))); err != nil {
				b.Fatal(err)
			}
		}
		<-ajs.PublishAsyncComplete()
	})
}

// BenchmarkRebuild reads a scope's whole history (every message
// interpreted and numbered by the Store's one reader) and folds it into
// desired state, against a raw ordered-consumer read of the same messages.
// HOIST_BENCH_EVENTS sets the history length. The default is 5,000, so that
// a plain `-bench .` run stays short; docs/benchmarks.md uses 1,000,000.
func BenchmarkRebuild(b *testing.B) {
	n := 5_000
	if v, err := strconv.Atoi(getenv("HOIST_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	srv, st, js := benchStore(b)
	fillScope(b, srv.Connect(b), web, n)
	// One untimed read first, so that neither side pays for what the fill
	// left behind (blocks still being flushed and loaded, the fill's garbage):
	// without it the side that runs first looks up to 3x slower.
	readRaw(b, js, n)

	b.Run("hoist", func(b *testing.B) {
		for b.Loop() {
			rebuild(b, st, n)
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

// rebuild reads web's history through the Store and folds it; every one
// of its n events must apply.
func rebuild(b *testing.B, st *store.Store, n int) {
	b.Helper()
	h, err := st.ScopeHistory(context.Background(), web, 0)
	if err != nil {
		b.Fatal(err)
	}
	f, skips := projector.Fold(web, h.Records)
	if len(skips) > 0 {
		b.Fatalf("%d skips, the first: %v", len(skips), skips[0])
	}
	if f.Revision() != uint64(n) || h.Head.Revision != uint64(n) {
		b.Fatalf("rebuilt to revision %d (head %d), want %d", f.Revision(), h.Head.Revision, n)
	}
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
// async raw publishes on hoist's subjects: filling is not what is measured.
// The scope must be empty, as each event claims its position.
func fillScope(b *testing.B, nc *nats.Conn, scope events.Scope, n int) {
	b.Helper()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	now := time.Now()
	for rev := 1; rev <= n; rev++ {
		var p events.Payload = &events.Scaled{Replicas: rev % 1000}
		if rev == 1 {
			p = &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1, Port: 8080}}
		}
		e := &events.Event{ID: "fill-" + strconv.Itoa(rev), Scope: scope, Revision: uint64(rev), Time: now, Actor: benchActor, Data: p}
		data, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		// The revision is the position: the n-th message on the scope's
		// subjects is revision n, so the body claims exactly that.
		msg := &nats.Msg{Subject: events.ScopeSubject(scope, p.Kind(), benchActor), Data: data}
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("fill did not complete")
	}
}

// BenchmarkAppendDurability is the price of sync-always (hoist server's
// default): the same hoist appends, one at a time, against a server with
// nats-server's default 2-minute sync and one that fsyncs every write
// before its ack, one after the other in the same run (-count alternates
// them).
//
//	go test ./events -run '^$' -bench AppendDurability -benchtime 2000x -count 3
func BenchmarkAppendDurability(b *testing.B) {
	ctx := context.Background()
	stores := map[string]*store.Store{
		"default": natstest.Start(b).Store(b),
		"sync":    natstest.StartSyncAlways(b).Store(b),
	}
	for _, st := range stores {
		benchDeploy(b, st, web)
	}
	for _, name := range []string{"default", "sync"} {
		st := stores[name]
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := st.Append(ctx, scaleEvent(web, i), store.AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
