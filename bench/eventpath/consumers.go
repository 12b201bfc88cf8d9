//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// consumerStep is the server's footprint at one step of the consumers
// phase.
type consumerStep struct {
	what     string
	rss      int64         // KiB, settled
	cpu      time.Duration // server CPU over cpuOver
	cpuOver  time.Duration
	diskObs  int64 // bytes of consumer state on disk
	duration time.Duration
}

type consumersResult struct {
	n          int
	designs    []consumerDesign
	deliveries int // per design, for the CPU per delivery
}

// consumerDesign is one way for n agents to read their events.
type consumerDesign struct {
	name  string
	steps []consumerStep
	// cpu is the server's CPU per message delivered to a consumer (and
	// acked, where the design acks).
	cpu time.Duration
}

// deliveryRounds is how many messages the delivery-cost step publishes.
const deliveryRounds = 20

// consumersPhase measures what n agents' consumers cost the server, one
// fresh server per design: n durable R1 consumers as the agents create them
// (consumer state on disk), the same with memory storage for the consumer
// state, and n ordered consumers (ephemeral, the client keeps the
// sequence). For each: RSS and idle CPU with the consumers created and in
// use by n connections, and the CPU of delivering messages to all of them.
func (e *env) consumersPhase() error {
	n := e.opts.consumers
	res := &consumersResult{n: n, deliveries: deliveryRounds * n}
	e.rep.consumers = res
	for i, d := range []struct {
		name            string
		durable, memory bool
	}{
		{"durable R1, state on disk (agents until now)", true, false},
		{"durable R1, state in memory (agents now)", true, true},
		{"ordered (the client keeps the sequence)", false, false},
	} {
		logf("  %s", d.name)
		cd, err := e.consumerDesign(i, n, d.name, d.durable, d.memory)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		res.designs = append(res.designs, cd)
	}
	return nil
}

func (e *env) consumerDesign(idx, n int, name string, durable, memory bool) (consumerDesign, error) {
	const idle = 10 * time.Second
	cd := consumerDesign{name: name}
	srv, err := startServer(e.bin, e.dir, fmt.Sprintf("consumers-%d-server", idx))
	if err != nil {
		return cd, err
	}
	defer srv.stop()
	st, nc, err := openStore(srv.url, "bench")
	if err != nil {
		return cd, err
	}
	defer nc.Close()
	scope := events.MustParseScope("bench.consumers.web")
	if err := seedScope(st, scope); err != nil {
		return cd, err
	}
	obs := filepath.Join(srv.data, "jetstream")
	cd.steps = append(cd.steps, step(srv, "no consumers", idle, obs, 0))
	ctx := context.Background()
	filters := func(i int) []string {
		return []string{events.ScopeFilter(scope), events.NodeFilter(fmt.Sprintf("c%04d", i))}
	}
	var get func(i int, js jetstream.JetStream) (jetstream.Consumer, error)
	t0 := time.Now()
	if durable {
		js, err := jetstream.New(nc)
		if err != nil {
			return cd, err
		}
		stream, err := js.Stream(ctx, events.EventsStream)
		if err != nil {
			return cd, err
		}
		for i := range n {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := stream.CreateConsumer(cctx, jetstream.ConsumerConfig{
				Durable: fmt.Sprintf("agent-c%04d", i), FilterSubjects: filters(i),
				AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
				MaxAckPending: 1024, MemoryStorage: memory,
			})
			cancel()
			if err != nil {
				return cd, fmt.Errorf("create durable %d: %w", i, err)
			}
		}
		cd.steps = append(cd.steps, step(srv, fmt.Sprintf("%d consumers, nobody connected", n), idle, obs, time.Since(t0)))
		t0 = time.Now()
		get = func(i int, js jetstream.JetStream) (jetstream.Consumer, error) {
			return js.Consumer(ctx, events.EventsStream, fmt.Sprintf("agent-c%04d", i))
		}
	} else {
		get = func(i int, js jetstream.JetStream) (jetstream.Consumer, error) {
			return js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{
				FilterSubjects: filters(i), DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 2,
			})
		}
	}
	got := &counter{}
	stopUse, err := useConsumers(srv.url, n, durable, got, get)
	if err != nil {
		return cd, err
	}
	defer stopUse()
	cd.steps = append(cd.steps, step(srv, fmt.Sprintf("%d consumers in use (%d connections, idle pulls)", n, n), idle, obs, time.Since(t0)))
	if cd.cpu, err = deliveryCost(srv, st, scope, n, got); err != nil {
		return cd, fmt.Errorf("deliveries: %w", err)
	}
	return cd, nil
}

// counter counts messages received by all consumers.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) inc() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// deliveryCost appends deliveryRounds events, each once every consumer
// has the one before, and returns the server's CPU per delivery.
func deliveryCost(srv *server, st *store.Store, scope events.Scope, n int, got *counter) (time.Duration, error) {
	ctx := context.Background()
	base := got.get()
	cpu0 := cpuTime(srv.pid())
	for k := range deliveryRounds {
		if _, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench", Data: &events.Scaled{Replicas: k % 2}}, store.AppendOptions{}); err != nil {
			return 0, err
		}
		want := base + (k+1)*n
		for deadline := time.Now().Add(time.Minute); got.get() < want; time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("only %d of %d deliveries within 1m", got.get()-base, (k+1)*n)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // let the acks and state writes land
	return (cpuTime(srv.pid()) - cpu0) / time.Duration(deliveryRounds*n), nil
}

func seedScope(st *store.Store, scope events.Scope) error {
	_, err := st.Append(context.Background(), &events.Event{Scope: scope, Actor: "bench", Data: &events.Deployed{Spec: events.Spec{Image: "bench:1", Replicas: 0}}}, store.AppendOptions{})
	return err
}

// step waits a moment, then reads the server's settled RSS, its CPU over
// d and the size of its consumer state.
func step(srv *server, what string, d time.Duration, jsDir string, took time.Duration) consumerStep {
	time.Sleep(time.Second)
	cpu0 := cpuTime(srv.pid())
	rss := settledRSS(srv.pid(), d)
	return consumerStep{what: what, rss: rss, cpu: cpuTime(srv.pid()) - cpu0, cpuOver: d, diskObs: obsSize(jsDir), duration: took}
}

// obsSize is the bytes of consumer state ("obs" directories) under dir.
func obsSize(dir string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "streams", "*", "obs"))
	for _, m := range matches {
		n += dirSize(m)
	}
	if len(matches) == 0 && strings.Contains(dir, "jetstream") {
		return dirSize(dir)
	}
	return n
}

// useConsumers opens n connections, each consuming one consumer the way
// an agent does (Consume with the agent's pull settings), until stop.
func useConsumers(url string, n int, ack bool, got *counter, get func(i int, js jetstream.JetStream) (jetstream.Consumer, error)) (stop func(), err error) {
	var conns []*nats.Conn
	var ccs []jetstream.ConsumeContext
	var mu sync.Mutex
	stop = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, cc := range ccs {
			cc.Stop()
		}
		for _, nc := range conns {
			nc.Close()
		}
		ccs, conns = nil, nil
	}
	for i := range n {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("consumer %d", i)))
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			stop()
			return nil, err
		}
		c, err := get(i, js)
		if err != nil {
			stop()
			return nil, fmt.Errorf("consumer %d: %w", i, err)
		}
		cc, err := c.Consume(func(m jetstream.Msg) {
			if ack {
				_ = m.Ack()
			}
			got.inc()
		},
			jetstream.PullMaxMessages(256), jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(2*time.Second))
		if err != nil {
			stop()
			return nil, fmt.Errorf("consume %d: %w", i, err)
		}
		ccs = append(ccs, cc)
	}
	return stop, nil
}
