//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/events/store"
)

// serverLoad is what the NATS server process used during one fan-out.
type serverLoad struct {
	n        int
	rss      int64         // KiB, peak during the rounds
	cpu      time.Duration // server CPU during the rounds
	wall     time.Duration
	benchRSS int64 // KiB, this process (agents and all receivers) at its peak
}

func openStore(url, name string) (*store.Store, *nats.Conn, error) {
	nc, err := store.Connect(store.ConnectOptions{URL: url, Name: name})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, nc, store.Options{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return st, nc, nil
}

// agentLogger writes the agents' warnings and errors to a file in the temp
// dir, so that a failing run can be diagnosed.
func (e *env) agentLogger(name string) (*slog.Logger, func(), error) {
	f, err := os.Create(filepath.Join(e.dir, name+"-agents.log"))
	if err != nil {
		return nil, nil, err
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn})), func() { f.Close() }, nil
}

func (e *env) latencyPhase() error {
	srv, stop, err := e.natsServer("latency-server")
	if err != nil {
		return err
	}
	defer stop()
	agentDir := filepath.Join(e.dir, "latency-agents")
	if e.opts.agentDir != "" {
		agentDir = filepath.Join(e.opts.agentDir, filepath.Base(e.dir))
		defer os.RemoveAll(agentDir)
	}
	run := &latencyRun{url: srv.url, dir: agentDir, rounds: e.opts.rounds, interval: e.opts.interval}
	if e.opts.redis {
		rp, addr, err := startRedis(e.dir)
		if err != nil {
			return err
		}
		defer rp.stop()
		run.redis = addr
		e.rep.redisVersion = redisVersion()
	}
	st, nc, err := openStore(srv.url, "bench publisher")
	if err != nil {
		return err
	}
	defer nc.Close()
	run.store = st
	log, closeLog, err := e.agentLogger("latency")
	if err != nil {
		return err
	}
	defer closeLog()
	run.log = log
	if e.opts.has("profile") {
		run.profile = e.profileAgents
	}
	largest := slices.Max(e.opts.sizes)
	for _, n := range e.opts.sizes {
		logf(" fan-out to %d", n)
		cpu0, t0 := cpuTime(srv.pid()), time.Now()
		rs, bs := sampleRSS(srv.pid(), 200*time.Millisecond), sampleRSS(os.Getpid(), 200*time.Millisecond)
		res, err := run.runFanout(n, n == largest)
		load := serverLoad{n: n, rss: rs.stop(), benchRSS: bs.stop(), cpu: cpuTime(srv.pid()) - cpu0, wall: time.Since(t0)}
		if err != nil {
			return fmt.Errorf("fan-out to %d: %w", n, err)
		}
		e.rep.fan = append(e.rep.fan, res...)
		e.rep.fanLoad = append(e.rep.fanLoad, load)
	}
	return nil
}
