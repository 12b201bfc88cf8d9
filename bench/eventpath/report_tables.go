//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

func (r *report) writeFanout(b *strings.Builder) {
	if len(r.fan) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Publish → every receiver has the change\n\n")
	w("Method: one `hoist server` child process serves every system that uses NATS. For each fan-out *n* the run sets up, side by side:\n\n")
	w("- **hoist agents**: *n* real agents (`nodeagent.Open`) in this process, each with its own NATS connection, durable consumer `agent-<node>` (consumer state in the server's memory), reference file (fsynced, written atomically; all on the same disk%s), status reporter and score reader, exactly as `hoist agent` runs them, with a runtime that runs nothing (the scope has 0 replicas). A change is an `env_changed` event appended with `store.Store.Append` (the CLI's publish path, waiting for the ack). Two rows: *folded* is the agent's feed having the event folded into desired state (`nodeagent.Options.OnFolded`); *on disk, acked, acted on* is the reference file written and fsynced, the message acked and the new desired state handed to the scope's worker (`OnApplied`), the point where the agent acts.\n", r.agentDirNote())
	w("- **NATS core pub/sub**: *n* subscribers, each on its own connection; one `Publish` + `Flush` of a %d-byte message. The floor.\n", payloadSize)
	if r.redisVersion != "" {
		w("- **Redis pub/sub** (keyshade's design): a redis-server of its own, *n* `SUBSCRIBE` connections, one `PUBLISH` (minimal RESP client in the benchmark).\n")
	}
	w("- **polling** (Hikari's daemon design, interval scaled down from 10 s to %s): *n* pollers, each reading the scope head with a JetStream direct get every %s from a random phase (over a pool of 16 connections); a change is an append. The pollers run only during their own turn.\n\n", r.opts.interval, r.opts.interval)
	w("Latency is from just before the publish call to the receiver's callback, so hoist's includes its own ack round trip (the *publish* column). Each of %d rounds runs the systems one after the other in a rotated order (10 changes each, 2 for the pollers, a short pause after each change), after one warm-up change per system. *min/p50/p99* are over every receiver of every change; *all had it* is, per change, when the last receiver had it; *p99 per round* is the spread of the rounds' p99s.\n\n", r.opts.rounds)
	w("| n | system | min | p50 | p99 | all had it p50 | all had it p99 | p99 per round | publish p50 | changes |\n")
	w("|--:|--------|----:|----:|----:|---------------:|---------------:|--------------:|------------:|--------:|\n")
	for _, f := range r.fan {
		s, l, p := summarize(f.deliveries), summarize(f.last), summarize(f.publish)
		rp := summarize(f.roundP99)
		changes := fmt.Sprint(f.changes)
		if f.incomplete > 0 {
			changes += fmt.Sprintf(" (%d incomplete)", f.incomplete)
		}
		w("| %d | %s | %s | %s | %s | %s | %s | %s–%s | %s | %s |\n", f.n, f.system, ms(s.min), ms(s.p50), ms(s.p99), ms(l.p50), ms(l.p99), ms(rp.min), ms(rp.max), ms(p.p50), changes)
	}
	w("\n")
	if len(r.fanLoad) > 0 {
		w("The server and this process during each fan-out (setup and all rounds):\n\n")
		w("| n | `hoist server` peak RSS | server CPU | wall | bench process peak RSS (agents + all receivers) |\n|--:|--:|--:|--:|--:|\n")
		for _, l := range r.fanLoad {
			w("| %d | %s | %s | %s | %s |\n", l.n, mib(l.rss), l.cpu.Round(10*time.Millisecond), l.wall.Round(time.Second), mib(l.benchRSS))
		}
		w("\n")
	}
	r.writeFanGoals(b)
}

func (r *report) find(system string, n int) *fanResult {
	for _, f := range r.fan {
		if f.n == n && strings.HasPrefix(f.system, system) {
			return f
		}
	}
	return nil
}

func (r *report) writeFanGoals(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("Goals (p99 over every agent of every change):\n\n")
	for _, g := range []struct {
		n     int
		limit time.Duration
	}{{100, 5 * time.Millisecond}, {1000, 50 * time.Millisecond}} {
		h, a := r.find("hoist agents: folded", g.n), r.find("hoist agents: on disk", g.n)
		if h == nil {
			continue
		}
		hp, ap := summarize(h.deliveries).p99, summarize(a.deliveries).p99
		w("- p99 ≤ %s at %d agents: folded %s, acted on %s: **%s**.\n", ms(g.limit), g.n, ms(hp), ms(ap), verdict(hp <= g.limit))
	}
	for _, f := range r.fan {
		if f.system != "NATS core pub/sub" {
			continue
		}
		h, a := r.find("hoist agents: folded", f.n), r.find("hoist agents: on disk", f.n)
		np := summarize(f.deliveries).p99
		hp, ap := summarize(h.deliveries).p99, summarize(a.deliveries).p99
		w("- ≤ 3× the raw NATS floor at %d: p99 folded %s, acted on %s of NATS core's %s: **%s**.\n", f.n,
			ratio(float64(hp), float64(np)), ratio(float64(ap), float64(np)), ms(np), verdict(float64(hp) <= 3*float64(np)))
	}
	w("\n")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not yet"
}

func (r *report) writeCatchup(b *strings.Builder) {
	c := r.catchup
	if c == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Catch-up\n\n")
	w("Method: a fresh `hoist server`; %d scopes get a first deploy; %d agents (in this process, as above) each serve %d of the scopes (so every scope has %d agents) and read that first revision; then all agents stop. While they are away %d `env_changed` events are appended round-robin over the scopes by 16 publishers (%s). Then all %d agents are opened at once: each must read %d events through its durable consumer. Measured until every agent has handed the head revision of every one of its scopes to its workers (`OnApplied`), then each agent's status is checked to hold exactly the head revision.\n\n",
		c.scopes, c.agents, c.perAgent, c.agents*c.perAgent/c.scopes, c.events, c.publish.Round(time.Millisecond), c.agents, c.perAgentEvents)
	if c.problem != "" {
		w("**Problem:** %s.\n\n", c.problem)
	}
	deliveries := float64(c.agents) * float64(c.perAgentEvents)
	w("| all converged | per agent p50 | p99 | first | exact | server RSS before → peak | server CPU | agents' CPU | CPU per event delivered (server + agent) |\n")
	w("|--:|--:|--:|--:|:-:|--:|--:|--:|--:|\n")
	w("| %s | %s | %s | %s | %s | %s → %s | %s | %s | %.0f + %.0f µs |\n\n", c.all.Round(10*time.Millisecond), ms(c.converge.p50), ms(c.converge.p99), ms(c.converge.min),
		map[bool]string{true: "yes", false: "NO"}[c.exact], mib(c.serverRSSBefore), mib(c.serverRSSPeak), c.serverCPU.Round(10*time.Millisecond), c.agentsCPU.Round(10*time.Millisecond),
		float64(c.serverCPU.Microseconds())/deliveries, float64(c.agentsCPU.Microseconds())/deliveries)
	w("The bench process (all %d agents) peaked at %s RSS. `-catchup-scopes 1 -catchup-scopes-per-agent 1` makes every agent read all events of one scope (the worst case).\n\n", c.agents, mib(c.benchRSSPeak))
}

func (r *report) writeConsumers(b *strings.Builder) {
	c := r.consumers
	if c == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### What consumers cost the server\n\n")
	w("Method: a fresh `hoist server` per design. %d consumers with the agent's filters (one scope and one node each) are created one by one (durables), then consumed by %d connections with the agent's pull settings (256 messages, 10 s expiry, 2 s heartbeat) while nothing is published; durables ack every message, as agents do. RSS is the median of 10 s of samples, CPU is the server's over those 10 s, disk is the consumers' state directories. Then %d events are appended, each once every consumer had the one before: *CPU per delivery* is the server's CPU over those deliveries (and acks).\n\n", c.n, c.n, deliveryRounds)
	w("| design | step | server RSS | server CPU / 10 s idle | consumer state on disk | setup took |\n|---|---|--:|--:|--:|--:|\n")
	for _, d := range c.designs {
		for _, s := range d.steps {
			w("| %s | %s | %s | %s | %.1f MiB | %s |\n", d.name, s.what, mib(s.rss), s.cpu.Round(10*time.Millisecond), float64(s.diskObs)/(1<<20), s.duration.Round(10*time.Millisecond))
		}
	}
	w("\n| design | server RSS per consumer in use | server CPU per delivery |\n|---|--:|--:|\n")
	for _, d := range c.designs {
		first, last := d.steps[0], d.steps[len(d.steps)-1]
		w("| %s | %.0f KiB | %.1f µs |\n", d.name, float64(last.rss-first.rss)/float64(c.n), float64(d.cpu.Nanoseconds())/1000)
	}
	w("\nSee docs/decisions.md for what the agents use.\n\n")
}

func (r *report) writeFootprint(b *strings.Builder) {
	f := r.footprint
	if f == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Footprint\n\n")
	w("Method: real processes built with `go build`, VmRSS from /proc (idle: median over 3 s; under load: peak, sampled every 50 ms). The agent is `hoist agent --runtime process` serving one scope of 0 replicas (replicas' own cost: see *Agent memory* above), loaded by one publisher appending `env_changed` events back to back for %s. The balancer is `hoist balancer` in front of one in-process backend, loaded by %d keep-alive clients for %s.\n\n", loadFor, f.balConns, loadFor)
	w("| process | idle RSS | RSS under load | load |\n|---|--:|--:|---|\n")
	w("| `hoist agent` | %s | %s | %d events in %s (%.0f/s), %s CPU |\n", mib(f.agentIdle), mib(f.agentLoad), f.agentEvents, f.agentLoadFor.Round(10*time.Millisecond),
		float64(f.agentEvents)/f.agentLoadFor.Seconds(), f.agentCPU.Round(10*time.Millisecond))
	w("| `hoist balancer` | %s | %s | %d requests in %s (%.0f/s) |\n\n", mib(f.balIdle), mib(f.balLoad), f.balRequests, f.balLoadFor.Round(10*time.Millisecond), float64(f.balRequests)/f.balLoadFor.Seconds())
	w("Binary size of `hoist`: %.1f MiB with `CGO_ENABLED=0 go build -ldflags \"-s -w\"`, %.1f MiB with a plain `go build`.\n\n", float64(f.sizeStripped)/(1<<20), float64(f.sizePlain)/(1<<20))
}

func (r *report) writeProfiles(b *strings.Builder) {
	if r.agentProfile == nil && r.balancerProfile == nil && r.catchupProfile == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Profiles\n\n")
	if p := r.agentProfile; p != nil {
		w("**Agent event path**: CPU profile (runtime/pprof) of this process during %s at the largest fan-out, other systems idle: %s. Top by flat CPU:\n\n```\n%s\n```\n\nAllocations during the same changes (alloc_space):\n\n```\n%s\n```\n\n", p.what, p.note, p.cpuTop, p.allocTop)
	}
	if p := r.catchupProfile; p != nil {
		w("**Catch-up**: CPU profile of the agents while they caught up (the server is a separate process). Top by flat CPU:\n\n```\n%s\n```\n\n", p.cpuTop)
	}
	if p := r.balancerProfile; p != nil {
		w("**Balancer request path**: `go test ./balancer -bench ^BenchmarkHandler -cpuprofile`: %s. Top by flat CPU:\n\n```\n%s\n```\n\nAllocations (alloc_space):\n\n```\n%s\n```\n\n", p.note, p.cpuTop, p.allocTop)
	}
}

func (r *report) writeEventlog(b *strings.Builder) {
	e := r.eventlog
	if e == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Event log\n\n")
	w("Package events' benchmarks, hoist against raw JetStream on the same embedded server (run by the same command, medians over the runs):\n\n")
	for _, c := range []string{e.appendCmd, e.interleavedCmd, e.pipeInterleavedCmd, e.rebuildCmd, e.decodeCmd} {
		if c != "" {
			w("- `%s`\n", c)
		}
	}
	w("\nThe *interleaved* rows alternate hoist and raw operation by operation (pipelined: round by round; rebuild: read by read) and compare median times: on this shared machine the sequential sub-benchmarks of the same run can differ several-fold with the load of the moment, so the interleaved ratio is the one to trust.\n\n")
	w("| benchmark | hoist | raw JetStream | hoist / raw | goal |\n|---|--:|--:|--:|---|\n")
	thr := func(ns float64) float64 {
		if ns == 0 {
			return 0
		}
		return 1e9 / ns
	}
	for _, c := range []struct{ label, hoist, raw string }{
		{"append, sync (one at a time)", "AppendSync/hoist", "AppendSync/raw"},
		{"append, 64 in flight", "AppendPipelined/hoist", "AppendPipelined/raw"},
	} {
		h, raw := thr(e.append.median(c.hoist, "ns/op")), thr(e.append.median(c.raw, "ns/op"))
		w("| %s (%d runs) | %.0f/s | %.0f/s | %s | ≥ 0.8×: **%s** |\n", c.label, e.append.count(c.hoist), h, raw, ratio(h, raw), verdict(raw > 0 && h >= 0.8*raw))
	}
	for _, c := range []struct{ label, name string }{
		{"append, sync, interleaved", "AppendInterleaved"},
		{"append, 64 in flight, interleaved", "AppendPipelinedInterleaved"},
	} {
		h, raw := e.append.median(c.name, "hoist-appends/s"), e.append.median(c.name, "raw-appends/s")
		if raw > 0 {
			rt := e.append.median(c.name, "hoist/raw")
			w("| %s (%d runs) | %.0f/s | %.0f/s | %.2f× | ≥ 0.8×: **%s** |\n", c.label, e.append.count(c.name), h, raw, rt, verdict(rt >= 0.8))
		}
	}
	if a := e.append.median("AppendPipelined/raw-async", "ns/op"); a > 0 {
		w("| (raw async publish, 64 pending, for reference) | | %.0f/s | | |\n", thr(a))
	}
	h, raw := e.rebuild.median("Rebuild/hoist", "events/s"), e.rebuild.median("Rebuild/raw", "events/s")
	w("| rebuild %d events (decode + fold vs ordered-consumer read) | %.0f events/s | %.0f events/s | %s | ≥ 0.7×: **%s** |\n", e.rebuildEvents, h, raw, ratio(h, raw), verdict(raw > 0 && h >= 0.7*raw))
	if ih, ir := e.rebuild.median("Rebuild/interleaved", "hoist-events/s"), e.rebuild.median("Rebuild/interleaved", "raw-events/s"); ir > 0 {
		rt := e.rebuild.median("Rebuild/interleaved", "hoist/raw")
		w("| rebuild %d events, interleaved | %.0f events/s | %.0f events/s | %.2f× | ≥ 0.7×: **%s** |\n", e.rebuildEvents, ih, ir, rt, verdict(rt >= 0.7))
	}
	w("\n")
	fast, general := e.decode.median("Decode", "ns/op"), e.decode.median("DecodeGeneral", "ns/op")
	if fast > 0 {
		w("Decoding one event (`BenchmarkDecode`, a scale event): %.0f ns, %.0f allocs; the general encoding/json path it falls back to (`BenchmarkDecodeGeneral`, the decoder before the fast path): %.0f ns, %.0f allocs.\n\n",
			fast, e.decode.median("Decode", "allocs/op"), general, e.decode.median("DecodeGeneral", "allocs/op"))
	}
}

func (r *report) agentDirNote() string {
	note := ""
	if r.opts.agentDir != "" {
		note = ", under " + r.opts.agentDir
	}
	if r.opts.inproc {
		note += "; the server embedded in this process (-inproc-server)"
	}
	return note
}
