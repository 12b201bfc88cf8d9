//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// system is one way of getting a change to n receivers. publish sends
// change number seq (1, 2, …) and returns the value receivers report for
// it; receivers call tr.seen.
type system struct {
	name    string
	tr      *tracker
	publish func(ctx context.Context, seq uint64) (uint64, error)
	// expect is what receivers will report for change seq, known before
	// it is published (there is one publisher per system).
	expect   func(seq uint64) uint64
	perRound int           // changes per round
	timeout  time.Duration // for every receiver to see one change
	settle   time.Duration // pause after each change
	// beginSlot and endSlot bracket the system's turn in a round (the
	// pollers poll only during their own turn, so their load does not
	// disturb the others).
	beginSlot, endSlot func()
	close              func()
	// acted, when set, tracks a later point of the same delivery (for the
	// agents: written to the reference file, acked and handed to the
	// worker), reported as its own row.
	acted     *tracker
	actedName string
}

// payloadSize is about the size of an encoded hoist event, for the raw
// systems' messages.
const payloadSize = 220

func seqPayload(seq uint64) []byte {
	b := []byte(strconv.FormatUint(seq, 10) + " ")
	for len(b) < payloadSize {
		b = append(b, 'x')
	}
	return b
}

func parseSeq(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// hoistSystem: n real agents on one scope; a change is a Store.Append.
func hoistSystem(st *store.Store, url, dir string, n int, log *slog.Logger) (*system, error) {
	scope := events.MustParseScope(fmt.Sprintf("bench.fan.n%d", n))
	tr, acted := newTracker(n), newTracker(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench", Data: &events.Deployed{Spec: events.Spec{Image: "bench:1", Replicas: 0}}}, store.AppendOptions{})
	if err != nil {
		return nil, err
	}
	ready := acted.arm(first.Revision)
	f, err := openFleet(agentSpec{url: url, dir: dir, prefix: fmt.Sprintf("fan%d", n), log: log,
		scopes:  func(int) []events.Scope { return []events.Scope{scope} },
		folded:  func(i int, sc events.Scope, rev uint64) { tr.seen(i, rev) },
		applied: func(i int, sc events.Scope, rev uint64) { acted.seen(i, rev) },
	}, n)
	if err != nil {
		return nil, err
	}
	if at, ok := acted.wait(ready, 3*time.Minute); !ok {
		f.close()
		synced := 0
		for _, t := range at {
			if !t.IsZero() {
				synced++
			}
		}
		return nil, fmt.Errorf("hoist: only %d of %d agents synced within 3m (their log: %s-agents.log in the temp dir; keep it with -keep)", synced, n, "latency")
	}
	head := first.Revision
	return &system{
		name: "hoist agents: folded", tr: tr, perRound: 10, timeout: 30 * time.Second,
		acted: acted, actedName: "hoist agents: on disk, acked, acted on",
		expect: func(uint64) uint64 { return head + 1 },
		settle: 20*time.Millisecond + time.Duration(n)*100*time.Microsecond,
		publish: func(ctx context.Context, seq uint64) (uint64, error) {
			e, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench",
				Data: &events.EnvChanged{Set: map[string]string{"CHANGE": strconv.FormatUint(seq, 10)}}}, store.AppendOptions{})
			if err != nil {
				return 0, err
			}
			head = e.Revision
			return e.Revision, nil
		},
		close: f.close,
	}, nil
}

// natsSystem: n core NATS subscribers, each on its own connection.
func natsSystem(url string, n int) (*system, error) {
	tr := newTracker(n)
	subject := fmt.Sprintf("bench.core.n%d", n)
	var conns []*nats.Conn
	closeAll := func() {
		for _, nc := range conns {
			nc.Close()
		}
	}
	for i := range n {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("core sub %d", i)))
		if err != nil {
			closeAll()
			return nil, err
		}
		conns = append(conns, nc)
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) { tr.seen(i, parseSeq(m.Data)) }); err != nil {
			closeAll()
			return nil, err
		}
		if err := nc.Flush(); err != nil {
			closeAll()
			return nil, err
		}
	}
	pub, err := nats.Connect(url, nats.Name("core pub"))
	if err != nil {
		closeAll()
		return nil, err
	}
	conns = append(conns, pub)
	return &system{
		name: "NATS core pub/sub", tr: tr, perRound: 10, timeout: 10 * time.Second,
		expect: func(seq uint64) uint64 { return seq },
		settle: 20*time.Millisecond + time.Duration(n)*20*time.Microsecond,
		publish: func(ctx context.Context, seq uint64) (uint64, error) {
			if err := pub.Publish(subject, seqPayload(seq)); err != nil {
				return 0, err
			}
			return seq, pub.FlushWithContext(ctx)
		},
		close: closeAll,
	}, nil
}

// redisSystem: n Redis SUBSCRIBE connections; a change is a PUBLISH.
func redisSystem(addr string, n int) (*system, error) {
	tr := newTracker(n)
	channel := fmt.Sprintf("bench.n%d", n)
	var subs []*respConn
	var wg sync.WaitGroup
	closeAll := func() {
		for _, c := range subs {
			c.close()
		}
		wg.Wait()
	}
	for i := range n {
		c, err := dialRESP(addr)
		if err != nil {
			closeAll()
			return nil, err
		}
		subs = append(subs, c)
		if _, err := c.do("SUBSCRIBE", channel); err != nil {
			closeAll()
			return nil, err
		}
		wg.Go(func() {
			for {
				v, err := c.read()
				if err != nil {
					return // closed
				}
				if msg, ok := v.([]any); ok && len(msg) == 3 && msg[0] == "message" {
					if s, ok := msg[2].(string); ok {
						tr.seen(i, parseSeq([]byte(s)))
					}
				}
			}
		})
	}
	pub, err := dialRESP(addr)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &system{
		name: "Redis pub/sub", tr: tr, perRound: 10, timeout: 10 * time.Second,
		expect: func(seq uint64) uint64 { return seq },
		settle: 20*time.Millisecond + time.Duration(n)*20*time.Microsecond,
		publish: func(ctx context.Context, seq uint64) (uint64, error) {
			v, err := pub.do("PUBLISH", channel, string(seqPayload(seq)))
			if err != nil {
				return 0, err
			}
			if got, _ := v.(int64); got != int64(n) {
				return 0, fmt.Errorf("redis: PUBLISH reached %v subscribers, want %d", v, n)
			}
			return seq, nil
		},
		close: func() {
			pub.close()
			closeAll()
		},
	}, nil
}

// pollSystem: n pollers, each reading the scope's head (a JetStream direct
// get) every interval, at a random phase; a change is a Store.Append. They
// share a pool of connections.
func pollSystem(st *store.Store, url string, n int, interval time.Duration) (*system, error) {
	scope := events.MustParseScope(fmt.Sprintf("bench.poll.n%d", n))
	filter := events.ScopeFilter(scope)
	tr := newTracker(n)
	var streams []jetstream.Stream
	var conns []*nats.Conn
	closeConns := func() {
		for _, nc := range conns {
			nc.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range min(n, 16) {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("poller pool %d", i)))
		if err != nil {
			closeConns()
			return nil, err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			closeConns()
			return nil, err
		}
		st, err := js.Stream(ctx, events.EventsStream)
		if err != nil {
			closeConns()
			return nil, err
		}
		streams = append(streams, st)
	}
	first, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench", Data: &events.Deployed{Spec: events.Spec{Image: "bench:1", Replicas: 0}}}, store.AppendOptions{})
	if err != nil {
		closeConns()
		return nil, err
	}
	head := first.Revision
	var stop context.CancelFunc
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var pollErr error
	poll := func(ctx context.Context, i int) {
		st := streams[i%len(streams)]
		t := time.NewTimer(rand.N(interval))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			t.Reset(interval)
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := st.GetLastMsgForSubject(gctx, filter)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					errMu.Lock()
					pollErr = err
					errMu.Unlock()
				}
				continue
			}
			var rev uint64
			if e, err := events.Decode(m.Data); err == nil {
				rev = e.Revision // hoist writes the revision it holds
			}
			tr.seen(i, rev)
		}
	}
	return &system{
		name: fmt.Sprintf("polling every %s", interval), tr: tr, perRound: 2, timeout: interval + 5*time.Second,
		expect: func(uint64) uint64 { return head + 1 },
		settle: 100 * time.Millisecond,
		publish: func(ctx context.Context, seq uint64) (uint64, error) {
			errMu.Lock()
			err := pollErr
			pollErr = nil
			errMu.Unlock()
			if err != nil {
				return 0, fmt.Errorf("poll: %w", err)
			}
			e, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench",
				Data: &events.EnvChanged{Set: map[string]string{"CHANGE": strconv.FormatUint(seq, 10)}}}, store.AppendOptions{})
			if err != nil {
				return 0, err
			}
			head = e.Revision
			return e.Revision, nil
		},
		beginSlot: func() {
			var ctx context.Context
			ctx, stop = context.WithCancel(context.Background())
			for i := range n {
				wg.Go(func() { poll(ctx, i) })
			}
		},
		endSlot: func() {
			stop()
			wg.Wait()
		},
		close: closeConns,
	}, nil
}
