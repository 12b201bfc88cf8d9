//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events/store"
)

// roleEnv makes this program run hoist's balancer in-process instead of
// the benchmark: the product has no profiling flag, so the harness
// re-executes itself as a balancer that writes HOIST_CPUPROFILE (and
// HOIST_MEMPROFILE, allocations) when it stops.
const roleEnv = "HOIST_BENCH_ROLE"

// runProfiledBalancer does what `hoist balancer --listen ADDR` does with
// default settings, under a CPU profile.
func runProfiledBalancer() error {
	fs := flag.NewFlagSet("balancer", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "HTTP address")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nc, err := store.Connect(store.ConnectOptions{URL: os.Getenv("HOIST_NATS_URL"), Name: "hoist bench balancer", Daemon: true, Logger: log})
	if err != nil {
		return err
	}
	defer nc.Close()
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, err := store.Open(octx, nc, store.Options{Logger: log})
	cancel()
	if err != nil {
		return err
	}
	cfg := balancer.DefaultConfig()
	cfg.Listen = *listen
	b, err := balancer.New(cfg, st, log)
	if err != nil {
		return err
	}
	if path := os.Getenv("HOIST_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	runErr := b.Run(ctx)
	if path := os.Getenv("HOIST_MEMPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("alloc profile: %w", err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return fmt.Errorf("alloc profile: %w", err)
		}
	}
	return runErr
}

type profileResult struct {
	rps float64
	top string
}

// profileHoist runs the in-process balancer under wrk and summarizes the
// CPU profile written to o.profile (allocations to o.profile+".allocs").
func (e *env) profileHoist(ctx context.Context, o options, tick time.Duration, logf func(string, ...any)) (*profileResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	allocs := o.profile + ".allocs"
	t, err := e.startHoist(ctx, "hoist-profiled", []string{self}, roleEnv+"=balancer", "HOIST_CPUPROFILE="+o.profile, "HOIST_MEMPROFILE="+allocs)
	if err != nil {
		return nil, err
	}
	wo := o.wrk
	wo.duration = o.profileFor
	res, err := runWrk(ctx, t, wo, tick)
	if err != nil {
		return nil, err
	}
	t.proc.stop(30 * time.Second)
	if _, err := t.proc.exited(); err != nil {
		return nil, fmt.Errorf("profiled balancer: %v (%s)", err, e.ps.logTail(t.name))
	}
	logf("profiled balancer: %.0f req/s; CPU profile %s, allocations %s", res.rps, o.profile, allocs)
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", o.profile).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pprof: %w: %s", err, out)
	}
	// Keep the summary lines and the table; drop the file/type header.
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") || strings.HasPrefix(l, "Build ID:") {
			continue
		}
		keep = append(keep, l)
	}
	return &profileResult{rps: res.rps, top: strings.Join(keep, "\n")}, nil
}
