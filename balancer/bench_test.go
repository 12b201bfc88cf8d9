package balancer

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// Benchmarks for docs/benchmarks.md. Run them one at a time on a quiet
// machine, e.g.
//
//	go test ./balancer/ -run '^$' -bench . -benchmem
//	go test ./balancer/ -run '^$' -bench ScoreToTable -benchtime 1x

func benchPool(b *testing.B, n int) *Pool {
	f, reg := newFolded(), newRegistry()
	var addrs []string
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1))
	}
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: addrs}))
	for i, a := range addrs {
		e := &events.Event{Kind: events.KindBackendScored, Scope: web, Time: time.Now(), Data: &events.BackendScored{Backend: a, Score: 1 + i%100}}
		if err := f.applyScore(e); err != nil {
			b.Fatal(err)
		}
	}
	return build(f, reg).Pool(web)
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprint(n, "backends"), func(b *testing.B) {
			p := benchPool(b, n)
			now := time.Now().UnixNano()
			b.ReportAllocs()
			for b.Loop() {
				p.pick(now, nil)
			}
		})
	}
}

func BenchmarkPickParallel(b *testing.B) {
	p := benchPool(b, 4)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.pick(now, nil)
		}
	})
}

func BenchmarkRoute(b *testing.B) {
	tb := routeTable(b, events.Scope{})
	b.ReportAllocs()
	for b.Loop() {
		tb.Route("web.example.com:8080")
		tb.Route("x.y.web.example.com")
	}
}

func BenchmarkTableBuild(b *testing.B) {
	for _, scopes := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(scopes, "scopes_x4backends"), func(b *testing.B) {
			f, reg := newFolded(), newRegistry()
			for i := range scopes {
				sc := events.MustParseScope(fmt.Sprintf("c%d.prod.web", i))
				mustApplyB(b, f, deployed(sc, 1, fmt.Sprintf("s%d.example.com", i), fmt.Sprintf("*.s%d.example.com", i)))
				var addrs []string
				for j := range 4 {
					addrs = append(addrs, fmt.Sprintf("10.%d.%d.%d:80", i/250, i%250, j+1))
				}
				f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: sc, Backends: addrs}))
				for j, a := range addrs {
					e := &events.Event{Kind: events.KindBackendScored, Scope: sc, Time: time.Now(), Data: &events.BackendScored{Backend: a, Score: 25 * (j + 1)}}
					if err := f.applyScore(e); err != nil {
						b.Fatal(err)
					}
				}
			}
			opts := buildOptions{defaultScore: 100}
			b.ReportAllocs()
			for b.Loop() {
				buildTable(f, opts, time.Now(), reg)
			}
		})
	}
}

func mustApplyB(b *testing.B, f *folded, e *events.Event) {
	if err := f.applyEvent(e); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHandler measures one proxied GET through the handler to a real
// keep-alive backend: the balancer's own cost plus one upstream round trip
// (no client connection).
func BenchmarkHandler(b *testing.B) {
	cfg := testConfig()
	bal, err := New(cfg, nil, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer be.Close()
	f, reg := newFolded(), newRegistry()
	mustApplyB(b, f, deployed(web, 1, "web.localhost"))
	f.applyReport(reportRecord(&events.BackendsReport{Node: "n1", Scope: web, Backends: []string{be.Listener.Addr().String()}}))
	bal.publish(buildTable(f, bal.buildOptions(), time.Now(), reg))
	h := bal.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://web.localhost/", nil)
	req.RemoteAddr = "10.0.0.1:5555"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkHandlerBaseline is the same request through a bare
// httputil.ReverseProxy with a default-tuned transport: the floor that
// BenchmarkHandler adds routing, picking, retries and metrics to.
func BenchmarkHandlerBaseline(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer be.Close()
	u, _ := url.Parse(be.URL)
	h := httputil.NewSingleHostReverseProxy(u)
	h.Transport = newTransport(testConfig())
	req := httptest.NewRequest(http.MethodGet, "http://web.localhost/", nil)
	req.RemoteAddr = "10.0.0.1:5555"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkScoreToTable measures how long a published score takes to reach
// the live table: publish, then poll Table until the weight shows. It
// reports the p50 and p99 over at least 200 score events.
func BenchmarkScoreToTable(b *testing.B) {
	srv := natstest.Start(b)
	st := srv.Store(b)
	if err := st.PublishBackends(b.Context(), &events.BackendsReport{Node: "n1", Scope: web, Backends: []string{"10.0.0.1:80"}, Time: time.Now()}); err != nil {
		b.Fatal(err)
	}
	bal, err := New(testConfig(), st, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	if err := bal.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	if err := bal.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	n := max(b.N, 200)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		score := i % 100
		if w, _ := bal.Table().Weight(web, "10.0.0.1:80"); w == score {
			score = (score + 1) % 100
		}
		start := time.Now()
		if _, err := st.Append(b.Context(), &events.Event{Scope: web, Data: &events.BackendScored{Backend: "10.0.0.1:80", Score: score}}, store.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		for {
			if w, _ := bal.Table().Weight(web, "10.0.0.1:80"); w == score {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("score %d never reached the table", score)
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(lat)), "events")
}
