//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	name    string // without the -GOMAXPROCS suffix
	nsPerOp float64
	metrics map[string]float64 // unit → value, e.g. "events/s", "allocs/op"
}

// benchRuns groups the lines of several -count runs by name, in the
// order the names first appeared.
type benchRuns struct {
	order []string
	runs  map[string][]benchLine
}

func (b *benchRuns) add(l benchLine) {
	if b.runs == nil {
		b.runs = map[string][]benchLine{}
	}
	if _, ok := b.runs[l.name]; !ok {
		b.order = append(b.order, l.name)
	}
	b.runs[l.name] = append(b.runs[l.name], l)
}

// median of a metric ("ns/op" or a reported unit) over the runs of name.
func (b *benchRuns) median(name, unit string) float64 {
	var v []float64
	for _, l := range b.runs[name] {
		if unit == "ns/op" {
			v = append(v, l.nsPerOp)
		} else if x, ok := l.metrics[unit]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func (b *benchRuns) count(name string) int { return len(b.runs[name]) }

func parseBench(out string, into *benchRuns) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		l := benchLine{name: strings.TrimPrefix(name, "Benchmark"), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if f[i+1] == "ns/op" {
				l.nsPerOp = v
			} else {
				l.metrics[f[i+1]] = v
			}
		}
		into.add(l)
	}
}

type eventlogResult struct {
	appendCmd, rebuildCmd, decodeCmd   string
	interleavedCmd, pipeInterleavedCmd string
	append, rebuild, decode            benchRuns
	rebuildEvents                      int
}

// eventlogPhase runs package events' benchmarks: appends (hoist vs raw
// JetStream), the rebuild of a long history and the decoder.
func (e *env) eventlogPhase() error {
	res := &eventlogResult{rebuildEvents: e.opts.logEvents}
	e.rep.eventlog = res
	run := func(cmdline *string, into *benchRuns, extraEnv []string, args ...string) error {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = a
			if strings.ContainsAny(a, "^$*|()") {
				shown[i] = "'" + a + "'"
			}
		}
		*cmdline = "go test ./events -run '^$' " + strings.Join(shown, " ")
		if len(extraEnv) > 0 {
			*cmdline = strings.Join(extraEnv, " ") + " " + *cmdline
		}
		logf("  %s", *cmdline)
		cmd := exec.Command("go", append([]string{"test", "./events", "-run", "^$"}, args...)...)
		cmd.Dir = e.root
		cmd.Env = append(os.Environ(), extraEnv...)
		out, err := cmd.CombinedOutput()
		if werr := os.WriteFile(filepath.Join(e.dir, "eventlog-"+strconv.Itoa(len(*cmdline))+".txt"), out, 0o644); werr != nil {
			return werr
		}
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", *cmdline, err, out)
		}
		parseBench(string(out), into)
		return nil
	}
	if err := run(&res.decodeCmd, &res.decode, nil, "-bench", "^BenchmarkDecode", "-benchmem", "-count", "5"); err != nil {
		return err
	}
	if err := run(&res.appendCmd, &res.append, nil, "-bench", "^BenchmarkAppend(Sync|Pipelined)$", "-benchtime", "2000x", "-count", strconv.Itoa(e.opts.logCount)); err != nil {
		return err
	}
	if err := run(&res.interleavedCmd, &res.append, nil, "-bench", "^BenchmarkAppendInterleaved$", "-benchtime", "4000x", "-count", "3"); err != nil {
		return err
	}
	if err := run(&res.pipeInterleavedCmd, &res.append, nil, "-bench", "^BenchmarkAppendPipelinedInterleaved$", "-benchtime", "30x", "-count", "3"); err != nil {
		return err
	}
	return run(&res.rebuildCmd, &res.rebuild, []string{"HOIST_BENCH_EVENTS=" + strconv.Itoa(e.opts.logEvents)}, "-bench", "^BenchmarkRebuild$", "-benchtime", "2x", "-count", "1")
}
