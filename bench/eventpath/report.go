//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type phaseTime struct {
	name string
	d    time.Duration
}

// report gathers every phase's results and renders them as markdown.
type report struct {
	opts                     options
	date, cpu, kernel, goVer string
	commit                   string
	nproc                    int
	loadStart, loadEnd       string
	redisVersion             string
	fan                      []*fanResult
	fanLoad                  []serverLoad
	catchup                  *catchupResult
	consumers                *consumersResult
	eventlog                 *eventlogResult
	footprint                *footprintResult
	agentProfile             *profileResult
	catchupProfile           *profileResult
	balancerProfile          *profileResult
	durations                []phaseTime
	total                    time.Duration
}

func newReport(root string, o options) *report {
	r := &report{opts: o, date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), nproc: runtime.NumCPU(), goVer: runtime.Version(), loadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				r.cpu = strings.TrimSpace(strings.TrimLeft(v, " \t:"))
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		r.kernel = strings.TrimSpace(string(out))
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, _ := cmd.Output()
		return strings.TrimSpace(string(out))
	}
	r.commit = git("rev-parse", "--short", "HEAD")
	if git("status", "--porcelain", "--", "events", "nodeagent", "balancer", "cmd/hoist", "bench/eventpath") != "" {
		r.commit += " + uncommitted changes"
	}
	return r
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

const (
	beginMarker = "<!-- bench:eventpath:begin (written by go run ./bench/eventpath; edit around it) -->"
	endMarker   = "<!-- bench:eventpath:end -->"
)

// writeSection puts md between the markers in path, replacing what was
// there; without markers it appends them.
func writeSection(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := beginMarker + "\n" + strings.TrimSpace(md) + "\n" + endMarker
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(endMarker):]
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (r *report) markdown() string {
	r.loadEnd = loadAvg()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Event path\n\n")
	w("`task bench:events` (or `go run ./bench/eventpath -out docs/benchmarks.md`) measures everything in this section and the next, and writes them between the markers around them; text outside the markers is kept.\n\n")
	w("Run %s at %s on %d × %s (`nproc` %d), Linux %s, %s", r.date, r.commit, r.nproc, r.cpu, r.nproc, r.kernel, r.goVer)
	if r.redisVersion != "" {
		w(", Redis %s", r.redisVersion)
	}
	w(". Load average %s at the start, %s at the end: other engineers' builds and tests shared the 2 cores, so absolute times are inflated and noisy; compare the systems within one table, which ran interleaved. Whole run: %s", r.loadStart, r.loadEnd, r.total.Round(time.Second))
	var parts []string
	for _, p := range r.durations {
		parts = append(parts, fmt.Sprintf("%s %s", p.name, p.d.Round(time.Second)))
	}
	if len(parts) > 0 {
		w(" (%s)", strings.Join(parts, ", "))
	}
	w(".\n\n")
	r.writeFanout(&b)
	r.writeCatchup(&b)
	r.writeConsumers(&b)
	r.writeFootprint(&b)
	r.writeProfiles(&b)
	r.writeEventlog(&b)
	return b.String()
}
