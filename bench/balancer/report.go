//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// facts describe the machine and software of a run.
type facts struct {
	date, cpu, kernel, goVersion, commit string
	nproc                                int
	versions                             map[string]string
	loadStart, loadEnd                   string
}

func gatherFacts(root string) facts {
	f := facts{date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), nproc: runtime.NumCPU(), goVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				f.cpu = strings.TrimSpace(strings.TrimLeft(v, " \t:"))
				break
			}
		}
	}
	first := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	f.kernel = first("uname", "-r")
	gitOut := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, _ := cmd.Output()
		return strings.TrimSpace(string(out))
	}
	f.commit = gitOut("rev-parse", "--short", "HEAD")
	if gitOut("status", "--porcelain", "--", "balancer", "cmd/hoist") != "" {
		f.commit += " + uncommitted changes"
	}
	nginx := "nginx"
	if _, err := exec.LookPath(nginx); err != nil {
		nginx = "/usr/sbin/nginx"
	}
	f.versions = map[string]string{
		"haproxy": strings.TrimPrefix(first("haproxy", "-v"), "HAProxy version "),
		"nginx":   strings.TrimPrefix(first(nginx, "-v"), "nginx version: "),
		"caddy":   first("caddy", "version"),
		"wrk":     wrkVersion(),
	}
	return f
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "?"
	}
	return strings.Join(fs[:3], " ")
}

// tpSummary is one target's throughput over the rounds.
type tpSummary struct {
	medianRPS, minRPS, maxRPS float64
	p50, p99, cpuPerReq       time.Duration // medians
	errors                    int
	rss                       int64
	ratio                     []float64 // hoist/this target, per round
}

func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarizeThroughput(results []wrkResult, targets []*target) map[string]*tpSummary {
	out := map[string]*tpSummary{}
	hoistByRound := map[int]float64{}
	for _, r := range results {
		if r.target == "hoist" {
			hoistByRound[r.round] = r.rps
		}
	}
	for _, t := range targets {
		var rps []float64
		var p50, p99, cpu []time.Duration
		s := &tpSummary{}
		for _, r := range results {
			if r.target != t.name {
				continue
			}
			rps, p50, p99 = append(rps, r.rps), append(p50, r.p50), append(p99, r.p99)
			if r.requests > 0 {
				cpu = append(cpu, r.cpuPerReq())
			}
			s.errors += r.errors
			if h, ok := hoistByRound[r.round]; ok && r.rps > 0 {
				s.ratio = append(s.ratio, h/r.rps)
			}
		}
		s.medianRPS, s.p50, s.p99, s.cpuPerReq = median(rps), median(p50), median(p99), median(cpu)
		if len(rps) > 0 {
			s.minRPS, s.maxRPS = slices.Min(rps), slices.Max(rps)
		}
		out[t.name] = s
	}
	return out
}

// goals are the ratios hoist/X that issue 4 asks for.
var goals = map[string]float64{"caddy": 1.2, "nginx": 0.8, "haproxy": 0.7}

const goalAddedP99 = 500.0 // µs

func report(f facts, o options, targets []*target, tp map[string]*tpSummary, results []wrkResult,
	lat map[string][]latencyPair, common map[string][]loadResult, prof *profileResult) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Run of %s on %d × %s (Linux %s), Go %s, hoist %s.  \n", f.date, f.nproc, f.cpu, f.kernel, f.goVersion, f.commit)
	p("HAProxy %s · nginx %s · Caddy %s · %s.  \n", f.versions["haproxy"], f.versions["nginx"], f.versions["caddy"], f.versions["wrk"])
	p("Load average before/after: %s / %s. wrk `-t%d -c%d -d%s --latency`, %d rounds in rotating order.\n\n",
		f.loadStart, f.loadEnd, o.wrk.threads, o.wrk.conns, o.wrk.duration, o.rounds)

	p("| target | req/s (median) | min – max | p50 | p99 | CPU/req | peak RSS | hoist / target (median of rounds) | goal |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, t := range targets {
		s := tp[t.name]
		ratio, goal := "", ""
		if _, ok := tp["hoist"]; ok && t.name != "hoist" && len(s.ratio) > 0 {
			r := median(s.ratio)
			ratio = fmt.Sprintf("**%.2f×** (%.2f – %.2f)", r, slices.Min(s.ratio), slices.Max(s.ratio))
			if g, ok := goals[t.name]; ok {
				goal = fmt.Sprintf("≥ %.1f× %s", g, mark(r >= g))
			}
		}
		errs := ""
		if s.errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", s.errors)
		}
		p("| %s | %.0f%s | %.0f – %.0f | %s | %s | %s | %s | %s | %s |\n", t.name, s.medianRPS, errs, s.minRPS, s.maxRPS,
			ms(s.p50), ms(s.p99), us(s.cpuPerReq), mib(s.rss), ratio, goal)
	}
	p("\n")

	if len(lat) > 0 {
		p("Latency at %.0f%% of each proxy's median req/s (loadgen, open loop, %d connections, %s per run after a 1 s warm-up, %d rounds; the backend directly at the same rate, back to back):\n\n",
			o.loadShare*100, o.load.conns, o.load.duration, o.latRounds)
		p("| proxy | rate | direct p50 / p99 | proxy p50 / p99 | added p50 | added p90 | added p99 | proxy CPU/req | goal: added p99 ≤ 0.5 ms |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, t := range targets {
			pairs := lat[t.name]
			if len(pairs) == 0 {
				continue
			}
			var d50, d99, p50, p99, a50, a90, a99 []float64
			var cpu []time.Duration
			for _, x := range pairs {
				d50, d99 = append(d50, x.direct.P50), append(d99, x.direct.P99)
				p50, p99 = append(p50, x.proxy.P50), append(p99, x.proxy.P99)
				a50, a99 = append(a50, x.proxy.P50-x.direct.P50), append(a99, x.proxy.P99-x.direct.P99)
				a90 = append(a90, x.proxy.P90-x.direct.P90)
				if x.proxy.Requests > 0 {
					cpu = append(cpu, x.proxy.cpu/time.Duration(x.proxy.Requests))
				}
			}
			added99 := median(a99)
			p("| %s | %.0f/s | %.2f / %.2f ms | %.2f / %.2f ms | %+.2f ms | %+.2f ms | **%+.2f ms** (%+.2f – %+.2f) | %s | %s |\n",
				t.name, pairs[0].proxy.Rate, median(d50)/1e3, median(d99)/1e3, median(p50)/1e3, median(p99)/1e3,
				median(a50)/1e3, median(a90)/1e3, added99/1e3, slices.Min(a99)/1e3, slices.Max(a99)/1e3, us(median(cpu)), mark(added99 <= goalAddedP99))
		}
		p("\nAdded = proxy − direct, per round, then the median over rounds (range in brackets).\n\n")
	}
	if len(common) > 0 {
		commonTable(p, o, targets, common)
	}

	p("<details><summary>Every wrk run</summary>\n\n| round | target | req/s | p50 | p99 | CPU/req | errors |\n|---:|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		p("| %d | %s | %.0f | %s | %s | %s | %d |\n", r.round+1, r.target, r.rps, ms(r.p50), ms(r.p99), us(r.cpuPerReq()), r.errors)
	}
	p("\n</details>\n")
	if prof != nil {
		p("\n<details><summary>CPU profile of hoist's balancer under wrk (%.0f req/s while profiled), top functions</summary>\n\n```\n%s\n```\n\n</details>\n",
			prof.rps, prof.top)
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }
func mib(n int64) string        { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

const (
	beginMarker = "<!-- bench:balancer:begin (written by go run ./bench/balancer; edit around it) -->"
	endMarker   = "<!-- bench:balancer:end -->"
)

// writeSection puts md between the markers in path, replacing what was
// there; without markers it appends them (creating the file if needed).
func writeSection(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	s := string(old)
	block := beginMarker + "\n" + md + endMarker
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMarker):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += block + "\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// commonTable reports every target at the same rate; added is against the
// direct run of the same round.
func commonTable(p func(string, ...any), o options, targets []*target, common map[string][]loadResult) {
	p("Every target at one rate, %.0f/s (%.0f%% of the slowest proxy's median req/s), %d rounds in rotating order:\n\n",
		o.commonRate, o.loadShare*100, o.latRounds)
	p("| target | p50 | p90 | p99 | added p50 | added p90 | added p99 | CPU/req |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	direct := common["direct"]
	for _, t := range targets {
		rs := common[t.name]
		if len(rs) == 0 {
			continue
		}
		var p50, p90, p99, a50, a90, a99 []float64
		var cpu []time.Duration
		for i, r := range rs {
			p50, p90, p99 = append(p50, r.P50), append(p90, r.P90), append(p99, r.P99)
			if i < len(direct) {
				a50 = append(a50, r.P50-direct[i].P50)
				a90 = append(a90, r.P90-direct[i].P90)
				a99 = append(a99, r.P99-direct[i].P99)
			}
			if r.Requests > 0 {
				cpu = append(cpu, r.cpu/time.Duration(r.Requests))
			}
		}
		added := []any{"", "", ""}
		if t.name != "direct" {
			added = []any{fmt.Sprintf("%+.2f ms", median(a50)/1e3), fmt.Sprintf("%+.2f ms", median(a90)/1e3), fmt.Sprintf("%+.2f ms", median(a99)/1e3)}
		}
		p("| %s | %.2f ms | %.2f ms | %.2f ms | %s | %s | %s | %s |\n", append(append([]any{t.name, median(p50) / 1e3, median(p90) / 1e3, median(p99) / 1e3}, added...), us(median(cpu)))...)
	}
	p("\n")
}
