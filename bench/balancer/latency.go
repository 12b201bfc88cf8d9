//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// loadResult is loadgen's JSON (see bench/loadgen) plus the target's CPU.
type loadResult struct {
	Rate      float64 `json:"rate"`
	Achieved  float64 `json:"achieved"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	P50       float64 `json:"p50_us"`
	P90       float64 `json:"p90_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p999_us"`
	Max       float64 `json:"max_us"`
	LateSends int     `json:"late_sends"`
	TimerLag  float64 `json:"timer_lag_us"`

	target string
	cpu    time.Duration
}

type loadOptions struct {
	conns    int
	duration time.Duration
}

// runLoad sends rate requests/s to t with loadgen.
func runLoad(ctx context.Context, bin string, t *target, rate float64, o loadOptions, tick time.Duration) (loadResult, error) {
	args := []string{"-url", t.url, "-host", benchHost, "-rate", strconv.FormatFloat(rate, 'f', 0, 64),
		"-duration", o.duration.String(), "-warmup", "1s", "-conns", strconv.Itoa(o.conns)}
	before := treeUsage(t.proc.pid(), tick)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	after := treeUsage(t.proc.pid(), tick)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			out = append(out, ee.Stderr...)
		}
		return loadResult{}, fmt.Errorf("loadgen %s at %.0f/s: %w: %s", t.name, rate, err, out)
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("loadgen %s: %w: %s", t.name, err, out)
	}
	r.target, r.cpu = t.name, after.cpu-before.cpu
	return r, nil
}

// latencyPair is one proxy and the direct baseline at the same rate, run
// back to back.
type latencyPair struct {
	proxy, direct loadResult
}

// latencyRounds runs, for each proxy, the direct baseline and the proxy at
// rates[proxy], rounds times, rotating the proxies' order and alternating
// which of the pair goes first.
func latencyRounds(ctx context.Context, bin string, direct *target, proxies []*target, rates map[string]float64,
	rounds int, o loadOptions, tick time.Duration, logf func(string, ...any)) (map[string][]latencyPair, error) {
	out := map[string][]latencyPair{}
	for r := range rounds {
		for i := range proxies {
			p := proxies[(i+r)%len(proxies)]
			rate := rates[p.name]
			var pair latencyPair
			order := []*target{direct, p}
			if (r+i)%2 == 1 {
				order = []*target{p, direct}
			}
			for _, t := range order {
				res, err := runLoad(ctx, bin, t, rate, o, tick)
				if err != nil {
					return nil, err
				}
				logf("latency round %d %-8s at %6.0f/s (%s baseline): p50 %6.0fµs p99 %6.0fµs (achieved %.0f/s, %d errors, %d late)",
					r+1, t.name, rate, p.name, res.P50, res.P99, res.Achieved, res.Errors, res.LateSends)
				if t == direct {
					pair.direct = res
				} else {
					pair.proxy = res
				}
			}
			out[p.name] = append(out[p.name], pair)
		}
	}
	return out, nil
}

// commonRounds runs every target (the backend directly included) at one
// rate, rounds times in rotating order: latency compared at equal load.
func commonRounds(ctx context.Context, bin string, targets []*target, rate float64, rounds int, o loadOptions,
	tick time.Duration, logf func(string, ...any)) (map[string][]loadResult, error) {
	out := map[string][]loadResult{}
	for r := range rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			res, err := runLoad(ctx, bin, t, rate, o, tick)
			if err != nil {
				return nil, err
			}
			logf("common rate round %d %-8s at %6.0f/s: p50 %6.0fµs p99 %6.0fµs (achieved %.0f/s, %d errors, %d late)",
				r+1, t.name, rate, res.P50, res.P99, res.Achieved, res.Errors, res.LateSends)
			out[t.name] = append(out[t.name], res)
		}
	}
	return out, nil
}
