package api

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hoist-dev/hoist/events"
)

// requestCounts counts answers by route pattern and status code.
type requestCounts struct {
	mu sync.Mutex
	n  map[[2]string]uint64
}

func (c *requestCounts) inc(route string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[[2]string]uint64{}
	}
	c.n[[2]string{route, strconv.Itoa(code)}]++
}

func (c *requestCounts) snapshot() map[[2]string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// statusWriter records the status code of an answer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) count(route string, h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.requests.inc(route, sw.code)
	}
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if _, err := s.who(r); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	if err := s.WriteMetrics(bw); err != nil {
		return
	}
	for _, extra := range s.opts.ExtraMetrics {
		if err := extra(bw); err != nil {
			s.log.Warn("write metrics", "err", err)
		}
	}
	_ = bw.Flush()
}

// streams are the streams the live readers follow, in metrics order.
var streams = []string{events.EventsStream, events.ScoresStream, events.BackendsStream, events.ReportsStream}

// WriteMetrics writes the API's metrics in the Prometheus text format.
func (s *Server) WriteMetrics(w io.Writer) error {
	var b strings.Builder
	family := func(name, kind, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	family("hoist_api_requests_total", "counter", "HTTP requests answered, by route and status code.")
	counts := s.requests.snapshot()
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	for _, k := range keys {
		fmt.Fprintf(&b, "hoist_api_requests_total{route=%q,code=%q} %d\n", k[0], k[1], counts[k])
	}
	family("hoist_api_writes_total", "counter", "Events published through the API.")
	fmt.Fprintf(&b, "hoist_api_writes_total %d\n", s.writes.Load())
	family("hoist_api_sse_clients", "gauge", "Open /v1/events streams.")
	fmt.Fprintf(&b, "hoist_api_sse_clients %d\n", s.sseActive.Load())
	followed, skipped, _ := s.hub.counts()
	family("hoist_api_stream_messages_total", "counter", "Stream messages the API's live readers read, by stream.")
	for _, k := range streams {
		fmt.Fprintf(&b, "hoist_api_stream_messages_total{stream=%q} %d\n", k, followed[k])
	}
	family("hoist_api_stream_skipped_total", "counter", "Stream messages the live readers skipped (rejected), by stream.")
	for _, k := range streams {
		fmt.Fprintf(&b, "hoist_api_stream_skipped_total{stream=%q} %d\n", k, skipped[k])
	}
	family("hoist_api_ready", "gauge", "1 once the live readers caught up with the streams.")
	ready := 0
	select {
	case <-s.hub.ready:
		ready = 1
	default:
	}
	fmt.Fprintf(&b, "hoist_api_ready %d\n", ready)
	_, err := io.WriteString(w, b.String())
	return err
}
