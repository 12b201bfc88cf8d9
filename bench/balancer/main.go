//go:build linux

// Command balancer benchmarks hoist's balancer against HAProxy, nginx and
// Caddy on this machine, side by side in one run:
//
//	go run ./bench/balancer -out docs/benchmarks.md
//
// It builds hoist, a static backend and a constant-rate load generator,
// starts two backends, a `hoist server`, `hoist balancer` and the three
// other proxies as child processes (stopped by process group id on exit,
// also on failure or Ctrl-C), then:
//
//  1. wrk -t2 -c64 against each proxy and one backend directly, in
//     rotating order, -rounds times: median req/s, latency, CPU per request;
//  2. loadgen at 50% of each proxy's median req/s against the proxy and the
//     backend directly, back to back, -lat-rounds times: the p50/p99 the
//     proxy adds;
//     then every target at one common rate (the slowest proxy's 50%);
//  3. the same against "goproxy", a bare httputil.ReverseProxy (this
//     program re-executed), the floor of any proxy built on net/http;
//  4. unless -profile "", a CPU profile of hoist's balancer (run in-process by
//     this program, HOIST_CPUPROFILE) under the same wrk load.
//
// The install script (scripts/install-bench-deps.sh) provides wrk and the
// proxies. Results are markdown; -out writes them into a file between
// markers, replacing an earlier run's.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	switch role := os.Getenv(roleEnv); role {
	case "balancer", "goproxy":
		run := runProfiledBalancer
		if role == "goproxy" {
			run = runGoProxy
		}
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, role+":", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	wrk        wrkOptions
	rounds     int
	load       loadOptions
	latRounds  int
	loadShare  float64
	commonRate float64
	out        string
	profile    string
	keep       bool
	proxies    []string
	profileFor time.Duration
}

func parseFlags() options {
	var o options
	flag.IntVar(&o.wrk.threads, "threads", 2, "wrk threads")
	flag.IntVar(&o.wrk.conns, "conns", 64, "wrk connections")
	flag.DurationVar(&o.wrk.duration, "duration", 10*time.Second, "each wrk run")
	flag.IntVar(&o.rounds, "rounds", 5, "wrk rounds over all targets")
	flag.IntVar(&o.load.conns, "lat-conns", 64, "loadgen connections")
	flag.DurationVar(&o.load.duration, "lat-duration", 8*time.Second, "each loadgen run (after 1s warm-up)")
	flag.IntVar(&o.latRounds, "lat-rounds", 3, "latency rounds (0 skips the latency phase)")
	flag.Float64Var(&o.loadShare, "load", 0.5, "latency phase rate, as a share of each proxy's median req/s")
	flag.Float64Var(&o.commonRate, "common-rate", 0, "rate (req/s) at which every target is also measured; 0: -load × the slowest proxy's median req/s; < 0 skips")
	flag.StringVar(&o.out, "out", "", "markdown `FILE` to write the results into (between markers); stdout always gets them")
	flag.StringVar(&o.profile, "profile", filepath.Join(os.TempDir(), "hoist-balancer.cpu.pprof"),
		"write a CPU profile of hoist's balancer under wrk load to `FILE`, and its top to the results (\"\" skips it)")
	flag.DurationVar(&o.profileFor, "profile-duration", 15*time.Second, "wrk run while profiling")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs)")
	proxies := flag.String("proxies", "hoist,haproxy,nginx,caddy,goproxy", "comma-separated proxies to run (goproxy: a bare Go httputil.ReverseProxy)")
	flag.Parse()
	o.proxies = strings.Split(*proxies, ",")
	return o
}

func run() error {
	o := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	for _, bin := range []string{"wrk", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: run scripts/install-bench-deps.sh", bin)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hoist-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	tok := make([]byte, 8)
	_, _ = rand.Read(tok)
	e := &env{dir: dir, ps: &procs{logs: dir}, token: hex.EncodeToString(tok)}
	defer e.ps.stopAll()

	logf("building hoist, backend and loadgen in %s", dir)
	for _, b := range []struct {
		dst *string
		pkg string
	}{{&e.hoist, "./cmd/hoist"}, {&e.backend, "./bench/backend"}, {&e.loadgen, "./bench/loadgen"}} {
		*b.dst = filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *b.dst, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w: %s", b.pkg, err, out)
		}
	}
	facts := gatherFacts(root)

	backends, err := e.startBackends(ctx)
	if err != nil {
		return err
	}
	direct := &target{name: "direct", url: "http://" + e.backends[0] + "/", proc: backends[0]}
	var proxies []*target
	for _, name := range o.proxies {
		var t *target
		switch name {
		case "hoist":
			if err = e.startNATS(ctx); err == nil {
				t, err = e.startHoist(ctx, "hoist", []string{e.hoist, "balancer"})
			}
		case "goproxy":
			t, err = e.startGoProxy(ctx)
		default:
			t, err = e.startProxy(ctx, name)
		}
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		logf("%s serving at %s (pid and process group %d)", name, t.url, t.proc.pid())
		proxies = append(proxies, t)
	}
	targets := append([]*target{direct}, proxies...)
	tick := clockTick()

	facts.loadStart = loadAvg()
	warm := o.wrk
	warm.duration = 2 * time.Second
	for _, t := range targets {
		if _, err := runWrk(ctx, t, warm, tick); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var results []wrkResult
	for r := range o.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			res, err := runWrk(ctx, t, o.wrk, tick)
			if err != nil {
				return err
			}
			res.round = r
			logf("round %d %-8s %8.0f req/s  p50 %-8v p99 %-8v cpu %v/req errors %d",
				r+1, t.name, res.rps, res.p50, res.p99, res.cpuPerReq(), res.errors)
			results = append(results, res)
		}
	}
	tp := summarizeThroughput(results, targets)

	var lat map[string][]latencyPair
	var common map[string][]loadResult
	if o.latRounds > 0 {
		rates := map[string]float64{}
		slowest := 0.0
		for _, p := range proxies {
			rates[p.name] = o.loadShare * tp[p.name].medianRPS
			if slowest == 0 || rates[p.name] < slowest {
				slowest = rates[p.name]
			}
		}
		if lat, err = latencyRounds(ctx, e.loadgen, direct, proxies, rates, o.latRounds, o.load, tick, logf); err != nil {
			return err
		}
		if o.commonRate == 0 {
			o.commonRate = slowest
		}
		if o.commonRate > 0 {
			if common, err = commonRounds(ctx, e.loadgen, targets, o.commonRate, o.latRounds, o.load, tick, logf); err != nil {
				return err
			}
		}
	}
	facts.loadEnd = loadAvg()

	var prof *profileResult
	if o.profile != "" {
		if prof, err = e.profileHoist(ctx, o, tick, logf); err != nil {
			return err
		}
	}
	for _, t := range targets {
		if ok, err := t.proc.exited(); ok {
			return fmt.Errorf("%s exited during the run: %v (%s)", t.name, err, e.ps.logTail(t.name))
		}
		tp[t.name].rss = treeUsage(t.proc.pid(), tick).rss
	}

	md := report(facts, o, targets, tp, results, lat, common, prof)
	fmt.Print(md)
	if o.out != "" {
		if err := writeSection(o.out, md); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// moduleRoot is the directory of hoist's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the hoist module")
	}
	return filepath.Dir(mod), nil
}
