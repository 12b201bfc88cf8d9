package balancer

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// WriteMetrics writes every metric in the Prometheus text exposition
// format (version 0.0.4), by hand: hoist takes no client library.
func (b *Balancer) WriteMetrics(out io.Writer) error {
	w := &promWriter{w: bufio.NewWriterSize(out, 16<<10)}
	t := b.table.Load()
	var pools []*Pool
	if t != nil {
		pools = t.pools
	}
	now := b.cfg.Now().UnixNano()

	w.family("hoist_balancer_requests_total", "counter", "Requests answered, by scope, backend (empty: answered by the balancer itself) and status code (0: other).")
	b.unrouted.each(func(code int, n uint64) { w.sample("hoist_balancer_requests_total", n, "", "", strconv.Itoa(code)) })
	for _, p := range pools {
		name := p.live.name
		p.live.none.each(func(code int, n uint64) { w.sample("hoist_balancer_requests_total", n, name, "", strconv.Itoa(code)) })
		for _, be := range p.Backends {
			be.st.codes.each(func(code int, n uint64) {
				w.sample("hoist_balancer_requests_total", n, name, be.Addr, strconv.Itoa(code))
			})
		}
	}

	w.family("hoist_balancer_request_duration_seconds", "histogram", "Time to answer a request (WebSocket sessions excluded), by scope.")
	for _, p := range pools {
		h := &p.live.latency
		var cum uint64
		for i, ub := range latencyBuckets {
			cum += h.buckets[i].Load()
			w.line("hoist_balancer_request_duration_seconds_bucket", strconv.FormatUint(cum, 10), "scope", p.live.name, "le", strconv.FormatFloat(ub, 'g', -1, 64))
		}
		count := h.count.Load()
		w.line("hoist_balancer_request_duration_seconds_bucket", strconv.FormatUint(count, 10), "scope", p.live.name, "le", "+Inf")
		w.line("hoist_balancer_request_duration_seconds_sum", strconv.FormatFloat(float64(h.sumNano.Load())/1e9, 'g', -1, 64), "scope", p.live.name)
		w.line("hoist_balancer_request_duration_seconds_count", strconv.FormatUint(count, 10), "scope", p.live.name)
	}

	perBackend := func(name, kind, help string, value func(*Backend) int64) {
		w.family(name, kind, help)
		for _, p := range pools {
			for i := range p.Backends {
				be := &p.Backends[i]
				w.line(name, strconv.FormatInt(value(be), 10), "scope", p.live.name, "backend", be.Addr)
			}
		}
	}
	perBackend("hoist_balancer_backend_weight", "gauge", "Current weight of each backend (its score; 0 for drained nodes).",
		func(be *Backend) int64 { return int64(be.Weight) })
	perBackend("hoist_balancer_backend_in_flight", "gauge", "Requests (and WebSockets) in flight to each backend.",
		func(be *Backend) int64 { return be.st.inflight.Load() })
	perBackend("hoist_balancer_backend_up", "gauge", "1 unless the backend is marked dead.",
		func(be *Backend) int64 {
			if be.st.dead(now) {
				return 0
			}
			return 1
		})
	perBackend("hoist_balancer_backend_failures_total", "counter", "Connection errors, timeouts (and 5xx with dead-on-5xx) per backend.",
		func(be *Backend) int64 { return int64(be.st.failures.Load()) })

	perScope := func(name, kind, help string, value func(*Pool) uint64) {
		w.family(name, kind, help)
		for _, p := range pools {
			w.line(name, strconv.FormatUint(value(p), 10), "scope", p.live.name)
		}
	}
	perScope("hoist_balancer_retries_total", "counter", "Requests retried on another backend.",
		func(p *Pool) uint64 { return p.live.retries.Load() })
	perScope("hoist_balancer_cache_hits_total", "counter", "Requests answered from the static cache.",
		func(p *Pool) uint64 { return p.live.cacheHits.Load() })
	perScope("hoist_balancer_cache_bytes", "gauge", "Bytes held by the static cache.",
		func(p *Pool) uint64 {
			if p.cache == nil {
				return 0
			}
			_, n := p.cache.stats()
			return uint64(n)
		})

	writeTrafficMetrics(w, pools)

	w.family("hoist_balancer_events_skipped_total", "counter", "Stream messages skipped because they could not be decoded or applied.")
	for i := range b.skipped {
		w.line("hoist_balancer_events_skipped_total", strconv.FormatUint(b.skipped[i].Load(), 10), "stream", source(i).String())
	}
	w.family("hoist_balancer_table_builds_total", "counter", "Weight tables built and swapped in.")
	w.line("hoist_balancer_table_builds_total", strconv.FormatUint(b.builds.Load(), 10))
	w.family("hoist_balancer_table_build_seconds", "gauge", "Duration of the last table build.")
	w.line("hoist_balancer_table_build_seconds", strconv.FormatFloat(float64(b.buildNanos.Load())/1e9, 'g', -1, 64))
	w.family("hoist_balancer_table_info", "gauge", "The table in use, by digest (equal digests, equal tables).")
	if t != nil {
		w.line("hoist_balancer_table_info", "1", "digest", t.digest)
	}
	w.family("hoist_balancer_ready", "gauge", "1 once the balancer has caught up with the streams.")
	ready := "0"
	if b.Ready() {
		ready = "1"
	}
	w.line("hoist_balancer_ready", ready)
	w.family("hoist_balancer_in_flight", "gauge", "Requests being served.")
	w.line("hoist_balancer_in_flight", strconv.FormatInt(b.active.Load(), 10))
	return w.w.Flush()
}

// promWriter writes exposition lines; write errors surface at Flush.
type promWriter struct{ w *bufio.Writer }

func (p *promWriter) family(name, kind, help string) {
	p.w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + kind + "\n")
}

func (p *promWriter) sample(name string, n uint64, scope, backend, code string) {
	if code == "0" {
		code = "other"
	}
	p.line(name, strconv.FormatUint(n, 10), "scope", scope, "backend", backend, "code", code)
}

// line writes name{k="v",…} value; labels come in key, value pairs.
func (p *promWriter) line(name, value string, labels ...string) {
	p.w.WriteString(name)
	if len(labels) > 0 {
		p.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.w.WriteByte(',')
			}
			p.w.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
		}
		p.w.WriteByte('}')
	}
	p.w.WriteString(" " + value + "\n")
}

func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
