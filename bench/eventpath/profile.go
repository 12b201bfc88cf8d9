//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// profileResult is a profile's file and the top of its report.
type profileResult struct {
	what     string
	cpuFile  string
	cpuTop   string
	allocTop string
	note     string
}

// profileChanges is how many changes the agent profile covers.
const profileChanges = 30

// profileAgents profiles this process (the agents, their NATS clients and
// nothing else busy: the other systems are idle) while changes go to the
// n agents of s.
func (e *env) profileAgents(run *latencyRun, s *system, n int) error {
	dir := filepath.Join(e.dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cpuFile, before, after := filepath.Join(dir, "agents-cpu.pprof"), filepath.Join(dir, "agents-allocs-before.pprof"), filepath.Join(dir, "agents-allocs.pprof")
	if err := writeAllocs(before); err != nil {
		return err
	}
	f, err := os.Create(cpuFile)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	cpu0, t0 := cpuTime(os.Getpid()), time.Now()
	res := &fanResult{}
	for i := range profileChanges {
		if err := run.change(s, 1_000_000+uint64(i), res, &fanResult{}); err != nil {
			pprof.StopCPUProfile()
			return err
		}
	}
	pprof.StopCPUProfile()
	cpu, wall := cpuTime(os.Getpid())-cpu0, time.Since(t0)
	if err := writeAllocs(after); err != nil {
		return err
	}
	p := &profileResult{what: fmt.Sprintf("%d changes to %d agents", profileChanges, n), cpuFile: cpuFile}
	p.note = fmt.Sprintf("%s of CPU in %s (%.0f µs per agent per change, settle pauses included)",
		cpu.Round(10*time.Millisecond), wall.Round(10*time.Millisecond), float64(cpu.Microseconds())/float64(profileChanges*n))
	p.cpuTop = pprofTop(e.root, "-top", "-nodecount", "25", cpuFile)
	p.allocTop = pprofTop(e.root, "-top", "-nodecount", "15", "-sample_index", "alloc_space", "-diff_base", before, after)
	e.rep.agentProfile = p
	if e.opts.keep {
		logf("  agent profiles in %s", dir)
	}
	return nil
}

func writeAllocs(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// pprofTop runs `go tool pprof` and returns its table, without the header
// lines that name files and dates.
func pprofTop(root string, args ...string) string {
	cmd := exec.Command("go", append([]string{"tool", "pprof"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("(pprof failed: %v)", err)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "File:"), strings.HasPrefix(line, "Build ID:"), strings.HasPrefix(line, "Time:"),
			strings.HasPrefix(line, "Type:"), strings.HasPrefix(line, "Duration:"), strings.HasPrefix(line, "Dropped"),
			strings.HasPrefix(line, "Showing top"):
			continue
		}
		keep = append(keep, strings.TrimRight(line, " "))
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// startCPUProfile profiles this process into dir/profiles/name until the
// returned stop is called, which returns the file ("" on failure).
func (e *env) startCPUProfile(name string) (stop func() string, err error) {
	dir := filepath.Join(e.dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() string {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return ""
		}
		return path
	}, nil
}

// balancerProfilePhase profiles the balancer's request path with its
// handler benchmark (package balancer), next to a bare
// httputil.ReverseProxy doing the same request.
func (e *env) balancerProfilePhase() error {
	dir := filepath.Join(e.dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cpuFile, memFile := filepath.Join(dir, "balancer-cpu.pprof"), filepath.Join(dir, "balancer-mem.pprof")
	args := []string{"test", "./balancer", "-run", "^$", "-bench", "^BenchmarkHandler", "-benchmem", "-benchtime", "3s", "-count", "1",
		"-cpuprofile", cpuFile, "-memprofile", memFile, "-o", filepath.Join(dir, "balancer.test")}
	logf("  go %s", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir = e.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("balancer benchmark: %w\n%s", err, out)
	}
	var runs benchRuns
	parseBench(string(out), &runs)
	p := &profileResult{what: "balancer handler", cpuFile: cpuFile}
	p.cpuTop = pprofTop(e.root, "-top", "-nodecount", "20", cpuFile)
	p.allocTop = pprofTop(e.root, "-top", "-nodecount", "12", "-sample_index", "alloc_space", memFile)
	h, base := runs.runs["Handler"], runs.runs["HandlerBaseline"]
	if len(h) > 0 && len(base) > 0 {
		p.note = fmt.Sprintf("BenchmarkHandler %.1f µs/op, %.0f B/op, %.0f allocs/op; a bare httputil.ReverseProxy (BenchmarkHandlerBaseline) %.1f µs/op, %.0f B/op, %.0f allocs/op",
			h[0].nsPerOp/1000, h[0].metrics["B/op"], h[0].metrics["allocs/op"], base[0].nsPerOp/1000, base[0].metrics["B/op"], base[0].metrics["allocs/op"])
	}
	e.rep.balancerProfile = p
	return nil
}
