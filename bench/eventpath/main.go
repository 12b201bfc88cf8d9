//go:build linux

// Command eventpath benchmarks hoist's event path against raw NATS, Redis
// pub/sub and polling, side by side in one run on this machine:
//
//	go run ./bench/eventpath -out docs/benchmarks.md
//
// It builds hoist, starts a `hoist server` child process (so the server's
// RSS and CPU can be read from /proc) and a redis-server of its own, both
// stopped by PID on exit, and then:
//
//  1. latency: a change published once, received by 1, 100 and 1000 real
//     node agents (nodeagent.Open in this process, each with its own NATS
//     connection, durable consumer and reference file, and a runtime that
//     runs nothing), by as many core NATS subscribers, Redis subscribers
//     and pollers; the systems take turns within each round;
//  2. catch-up: agents offline while events are published, then all
//     started at once; time to converge, server RSS and CPU;
//  3. consumers: what 1000 durable consumers cost the server;
//  4. event log: the append and rebuild benchmarks of package events;
//  5. footprint: RSS of real `hoist agent` and `hoist balancer` processes,
//     and the binary's size;
//  6. profiles of the agent's event path and the balancer's handler.
//
// redis-server comes from scripts/install-bench-deps.sh. The results are
// markdown; -out writes them into a file between markers, replacing an
// earlier run's.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eventpath:", err)
		os.Exit(1)
	}
}

type options struct {
	out        string
	phases     []string
	sizes      []int
	rounds     int
	interval   time.Duration
	redis      bool
	keep       bool
	catchAgent int
	catchEvent int
	catchScope int
	perAgent   int // scopes per agent in the catch-up
	consumers  int
	logCount   int
	logEvents  int
	inproc     bool
	agentDir   string
}

var allPhases = []string{"latency", "catchup", "consumers", "eventlog", "footprint", "profile"}

func parseFlags() (options, error) {
	var o options
	var phases, sizes string
	flag.StringVar(&o.out, "out", "", "markdown `FILE` to write the results into (between markers); stdout always gets them")
	flag.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run, comma-separated")
	flag.StringVar(&sizes, "sizes", "1,100,1000", "fan-outs (receivers per system)")
	flag.IntVar(&o.rounds, "rounds", 5, "latency rounds (each: 10 changes per push system, 2 per poller)")
	flag.DurationVar(&o.interval, "poll-interval", time.Second, "the pollers' interval")
	flag.BoolVar(&o.redis, "redis", true, "compare with Redis pub/sub (needs redis-server)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (logs, data, profiles)")
	flag.IntVar(&o.catchAgent, "catchup-agents", 1000, "agents offline during the catch-up")
	flag.IntVar(&o.catchEvent, "catchup-events", 10000, "events published while they are offline")
	flag.IntVar(&o.catchScope, "catchup-scopes", 100, "scopes the catch-up events are spread over")
	flag.IntVar(&o.perAgent, "catchup-scopes-per-agent", 10, "scopes each catch-up agent serves")
	flag.IntVar(&o.consumers, "consumers", 1000, "durable consumers created in the consumers phase")
	flag.IntVar(&o.logCount, "eventlog-count", 5, "-count of the append benchmarks")
	flag.IntVar(&o.logEvents, "rebuild-events", 1_000_000, "history length of the rebuild benchmark")
	flag.BoolVar(&o.inproc, "inproc-server", false, "latency and catch-up: embed the NATS server in this process, so the CPU profiles include it (its RSS is then this process's)")
	flag.StringVar(&o.agentDir, "agent-dir", "", "latency: put the agents' reference files under `DIR` (e.g. /dev/shm, to take the disk out) instead of the temp dir")
	flag.Parse()
	o.phases = strings.Split(phases, ",")
	for _, p := range o.phases {
		if !slices.Contains(allPhases, p) {
			return o, fmt.Errorf("-phases: unknown phase %q (want some of %s)", p, strings.Join(allPhases, ","))
		}
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-sizes: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.rounds < 1 {
		return o, errors.New("-rounds must be at least 1")
	}
	return o, nil
}

func (o options) has(phase string) bool { return slices.Contains(o.phases, phase) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// env is what the phases share: the repository, the temp dir and the
// hoist binary.
type env struct {
	root string
	dir  string
	bin  string
	opts options
	rep  *report
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hoist-eventpath-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{root: root, dir: dir, opts: o, rep: newReport(root, o)}

	// Children are stopped by their PIDs on the way out, also on Ctrl-C:
	// the signal only cancels; the deferred stops run.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- e.phases() }()
	select {
	case err = <-errc:
	case s := <-sigs:
		logf("%s: stopping (children are stopped by their deferred cleanups)", s)
		err = fmt.Errorf("interrupted by %s", s)
		signal.Stop(sigs)
		select {
		case <-errc:
		case <-time.After(30 * time.Second):
		}
	}
	if err != nil {
		// What was measured before the failure is still worth a look,
		// but it does not replace the results in -out.
		fmt.Println(e.rep.markdown())
		return err
	}
	md := e.rep.markdown()
	fmt.Println(md)
	if o.out != "" {
		out := o.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(root, out)
		}
		if err := writeSection(out, md); err != nil {
			return err
		}
		logf("wrote %s", out)
	}
	return nil
}

func (e *env) phases() error {
	started := time.Now()
	logf("building hoist")
	e.bin = filepath.Join(e.dir, "hoist")
	if _, err := goBuild(e.root, e.bin, "./cmd/hoist", nil); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"latency", e.latencyPhase},
		{"catchup", e.catchupPhase},
		{"consumers", e.consumersPhase},
		{"footprint", e.footprintPhase},
		{"profile", e.balancerProfilePhase},
		{"eventlog", e.eventlogPhase},
	}
	for _, s := range steps {
		if !e.opts.has(s.name) {
			continue
		}
		t := time.Now()
		logf("phase %s", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		e.rep.durations = append(e.rep.durations, phaseTime{s.name, time.Since(t)})
		logf("phase %s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	e.rep.total = time.Since(started)
	return nil
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/hoist-dev/hoist") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this from inside the hoist repository")
		}
		dir = parent
	}
}
