//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

type footprintResult struct {
	sizeStripped, sizePlain int64 // bytes
	agentIdle, agentLoad    int64 // KiB
	agentEvents             int   // events folded under load
	agentLoadFor            time.Duration
	agentCPU                time.Duration
	balIdle, balLoad        int64 // KiB
	balRequests             int64
	balLoadFor              time.Duration
	balConns                int
}

const loadFor = 5 * time.Second

func (e *env) footprintPhase() error {
	res := &footprintResult{}
	e.rep.footprint = res
	var err error
	logf("  building hoist with CGO_ENABLED=0 -ldflags '-s -w'")
	if res.sizeStripped, err = goBuild(e.root, filepath.Join(e.dir, "hoist-stripped"), "./cmd/hoist", []string{"CGO_ENABLED=0"}, "-ldflags", "-s -w"); err != nil {
		return err
	}
	fi, err := os.Stat(e.bin)
	if err != nil {
		return err
	}
	res.sizePlain = fi.Size()

	srv, err := startServer(e.bin, e.dir, "footprint-server")
	if err != nil {
		return err
	}
	defer srv.stop()
	st, nc, err := openStore(srv.url, "bench publisher")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := e.agentFootprint(srv, st, res); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := e.balancerFootprint(srv, st, res); err != nil {
		return fmt.Errorf("balancer: %w", err)
	}
	return nil
}

// agentFootprint runs `hoist agent --runtime process` for one scope (of
// zero replicas: only the agent itself is measured) and reads its RSS idle
// and while events arrive as fast as one publisher appends them.
func (e *env) agentFootprint(srv *server, st *store.Store, res *footprintResult) error {
	dir := filepath.Join(e.dir, "footprint-agent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	scope := events.MustParseScope("bench.footprint.web")
	nodeToml := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(nodeToml, []byte("version = \"1\"\nname = \"fp-1\"\nscopes = [\"bench.footprint.web\"]\n"), 0o644); err != nil {
		return err
	}
	ctx := context.Background()
	first, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench", Data: &events.Deployed{Spec: events.Spec{Image: "bench:1", Replicas: 0}}}, store.AppendOptions{})
	if err != nil {
		return err
	}
	agent, err := start(e.dir, "footprint-agent", e.bin, []string{"--nats-url", srv.url, "--log-level", "warn", "agent",
		"--node-config", nodeToml, "--runtime", "process", "--data", dir, "--agent-check", "127.0.0.1:0"}, nil, nil, 0)
	if err != nil {
		return err
	}
	defer agent.stop()
	if err := waitDesired(ctx, st, "fp-1", scope, first.Revision); err != nil {
		return err
	}
	res.agentIdle = settledRSS(agent.pid(), 3*time.Second)

	s := sampleRSS(agent.pid(), 50*time.Millisecond)
	cpu0 := cpuTime(agent.pid())
	t0 := time.Now()
	var last uint64
	for time.Since(t0) < loadFor {
		ev, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench",
			Data: &events.EnvChanged{Set: map[string]string{"N": strconv.Itoa(res.agentEvents)}}}, store.AppendOptions{})
		if err != nil {
			s.stop()
			return err
		}
		last = ev.Revision
		res.agentEvents++
	}
	err = waitDesired(ctx, st, "fp-1", scope, last)
	res.agentLoadFor = time.Since(t0)
	res.agentCPU = cpuTime(agent.pid()) - cpu0
	res.agentLoad = s.stop()
	return err
}

// waitDesired waits until node reports revision rev of scope as desired.
func waitDesired(ctx context.Context, st *store.Store, node string, scope events.Scope, rev uint64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sts, err := st.NodeStatuses(ctx, scope, nil)
		if err == nil {
			for _, st := range sts {
				if st.Node != node {
					continue
				}
				for _, ss := range st.Scopes {
					if ss.Scope == scope && ss.Desired >= rev {
						return nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s did not report revision %d of %s within 2m", node, rev, scope)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// balancerFootprint runs `hoist balancer` in front of one in-process
// backend and reads its RSS idle and under keep-alive load.
func (e *env) balancerFootprint(srv *server, st *store.Store, res *footprintResult) error {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from the backend\n")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Close()

	ctx := context.Background()
	scope := events.MustParseScope("bench.footprint.lb")
	ev, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "bench", Data: &events.Deployed{Spec: events.Spec{Image: "bench:1", Replicas: 0, Hosts: []string{"lb.bench.test"}}}}, store.AppendOptions{})
	if err != nil {
		return err
	}
	if err := st.PublishBackends(ctx, &events.BackendsReport{Node: "static", Scope: scope, Revision: ev.Revision,
		Backends: []string{ln.Addr().String()}, Time: time.Now().UTC()}); err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(freePort())
	bal, err := start(e.dir, "footprint-balancer", e.bin, []string{"--nats-url", srv.url, "--log-level", "warn", "balancer", "--listen", listen}, nil, nil, 0)
	if err != nil {
		return err
	}
	defer bal.stop()
	url := "http://" + listen + "/"
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func() bool {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "lb.bench.test"
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for deadline := time.Now().Add(time.Minute); !get(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("balancer on %s does not route lb.bench.test; see %s", listen, bal.log)
		}
	}
	res.balIdle = settledRSS(bal.pid(), 3*time.Second)

	res.balConns = 64
	s := sampleRSS(bal.pid(), 50*time.Millisecond)
	var n atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range res.balConns {
		wg.Go(func() {
			for time.Since(t0) < loadFor {
				if get() {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	res.balLoadFor = time.Since(t0)
	res.balLoad = s.stop()
	res.balRequests = n.Load()
	return nil
}
