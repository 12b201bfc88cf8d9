package balancer

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// clock is real time plus an offset the test can advance.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(s.URL, "http://")
	s.Close()
	return addr
}

func TestProxyRoutesAndForwards(t *testing.T) {
	fx := newFixture(t, nil)
	var seen atomic.Pointer[http.Request]
	be := newBackend(t, "web", func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r)
		_, _ = io.WriteString(w, "web")
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.deploy(t, api, events.Spec{Hosts: []string{"api.localhost"}})
	fx.announce(web, "n1", be.addr())

	res, body := get(t, fx.proxy.Client(), fx.proxy.URL, "Web.Localhost:8080", "/x?y=1")
	if res.StatusCode != 200 || body != "web" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	r := seen.Load()
	if r.Host != "Web.Localhost:8080" || r.URL.RequestURI() != "/x?y=1" {
		t.Fatalf("backend saw Host %q URI %q", r.Host, r.URL.RequestURI())
	}
	if r.Header.Get("X-Forwarded-For") != "127.0.0.1" || r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("X-Forwarded-Host") != "Web.Localhost:8080" {
		t.Fatalf("forwarding headers %v", r.Header)
	}

	res, body = get(t, fx.proxy.Client(), fx.proxy.URL, "nope.localhost", "/")
	if res.StatusCode != 404 || !strings.Contains(body, "no site") {
		t.Fatalf("unknown host: %d %q", res.StatusCode, body)
	}
	res, _ = get(t, fx.proxy.Client(), fx.proxy.URL, "api.localhost", "/") // deployed, no backends
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("no backends: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func TestErrorPagesFromDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "404.html"), []byte("<h1>lost</h1>"), 0o600); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, func(c *Config) { c.ErrorPagesDir = dir })
	fx.rebuild()
	res, body := get(t, fx.proxy.Client(), fx.proxy.URL, "nope.localhost", "/")
	if res.StatusCode != 404 || body != "<h1>lost</h1>" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("got %d %q %q", res.StatusCode, body, res.Header.Get("Content-Type"))
	}
	if _, err := New(Config{ErrorPagesDir: filepath.Join(dir, "missing")}, nil, nil); err == nil {
		t.Fatal("a missing error page directory was accepted")
	}
}

func TestGETToDeadBackendIsRetried(t *testing.T) {
	fx := newFixture(t, nil)
	live := newBackend(t, "live", nil)
	dead := deadAddr(t)
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", dead, live.addr())
	for i := range 20 {
		res, body := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/")
		if res.StatusCode != 200 || body != "live" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	if live.hits.Load() != 20 {
		t.Fatalf("live backend got %d of 20", live.hits.Load())
	}
	p := fx.b.Table().Pool(web)
	if p.live.retries.Load() != 1 {
		t.Fatalf("want exactly one retry (then the dead backend is skipped), got %d", p.live.retries.Load())
	}
}

func TestPOSTIsNeverReplayed(t *testing.T) {
	fx := newFixture(t, nil)
	// Both backends cut the connection after reading the request: the
	// POST reached one of them, so it must not be sent to the other.
	cut := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	a, b := newBackend(t, "a", cut), newBackend(t, "b", cut)
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", a.addr(), b.addr())

	req, _ := http.NewRequest(http.MethodPost, fx.proxy.URL+"/orders", strings.NewReader(`{"n":1}`))
	req.Host = "web.localhost"
	res, err := fx.proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode < 500 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := a.hits.Load() + b.hits.Load(); got != 1 {
		t.Fatalf("the POST reached backends %d times, want once", got)
	}
	// A bodiless PATCH is not replayed either; a bodiless DELETE is.
	for _, m := range []string{http.MethodPatch, http.MethodDelete} {
		p := fx.b.Table().Pool(web)
		for i := range p.Backends {
			p.Backends[i].st.revive()
		}
		before := a.hits.Load() + b.hits.Load()
		req, _ := http.NewRequest(m, fx.proxy.URL+"/x", nil)
		req.Host = "web.localhost"
		res, err := fx.proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := int64(1)
		if m == http.MethodDelete {
			want = 2
		}
		if got := a.hits.Load() + b.hits.Load() - before; got != want {
			t.Fatalf("%s reached backends %d times, want %d", m, got, want)
		}
	}
}

func TestDeadBackendComesBackAfterTTL(t *testing.T) {
	var clk clock
	fx := newFixture(t, func(c *Config) { c.Now, c.DeadTTL = clk.now, 30*time.Second })
	var down atomic.Bool
	down.Store(true)
	flaky := newBackend(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "flaky")
	})
	steady := newBackend(t, "steady", nil)
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", flaky.addr(), steady.addr())

	for range 10 {
		if res, _ := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/"); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if n := flaky.hits.Load(); n != 1 {
		t.Fatalf("flaky got %d hits while dead, want only the first", n)
	}
	down.Store(false)
	clk.advance(29 * time.Second)
	get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/")
	if n := flaky.hits.Load(); n != 1 {
		t.Fatalf("flaky came back before its TTL (%d hits)", n)
	}
	clk.advance(2 * time.Second)
	natstest.Eventually(t, 5*time.Second, func() error {
		if _, body := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/"); body != "flaky" {
			return fmt.Errorf("still served by %q", body)
		}
		return nil
	})
}

func TestScoreZeroStopsNewRequestsButInFlightFinishes(t *testing.T) {
	fx := newFixture(t, nil)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "slow")
	})
	other := newBackend(t, "other", nil)
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", slow.addr())

	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, fx.proxy.URL+"/slow", nil)
		req.Host = "web.localhost"
		res, err := fx.proxy.Client().Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- fmt.Sprint(res.StatusCode, " ", string(b))
	}()
	<-entered
	fx.announce(web, "n1", slow.addr(), other.addr())
	fx.score(t, web, slow.addr(), 0)
	hitsBefore := slow.hits.Load()
	for range 50 {
		if _, body := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/"); body != "other" {
			t.Fatalf("score 0 backend served a new request")
		}
	}
	if slow.hits.Load() != hitsBefore {
		t.Fatal("score 0 backend got new requests")
	}
	if n := fx.b.Table().Pool(web).Backends[0].st.inflight.Load() + fx.b.Table().Pool(web).Backends[1].st.inflight.Load(); n != 1 {
		t.Fatalf("in flight %d, want the slow one", n)
	}
	close(release)
	if got := <-done; got != "200 slow" {
		t.Fatalf("in-flight request: %s", got)
	}
}

func TestStreamingIsFlushedImmediately(t *testing.T) {
	fx := newFixture(t, nil)
	release := make(chan struct{})
	defer close(release)
	be := newBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", be.addr())
	req, _ := http.NewRequest(http.MethodGet, fx.proxy.URL+"/events", nil)
	req.Host = "web.localhost"
	res, err := fx.proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
}

func TestMaxBody(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.MaxBody = 1024 })
	be := newBackend(t, "sink", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", be.addr())
	post := func(body io.Reader) int {
		req, _ := http.NewRequest(http.MethodPut, fx.proxy.URL+"/up", body)
		req.Host = "web.localhost"
		res, err := fx.proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(strings.NewReader(strings.Repeat("x", 1000))); code != 200 {
		t.Fatalf("small body: %d", code)
	}
	if code := post(strings.NewReader(strings.Repeat("x", 5000))); code != 413 {
		t.Fatalf("declared large body: %d", code)
	}
	// A chunked body of unknown length is cut at the limit.
	if code := post(io.MultiReader(strings.NewReader(strings.Repeat("x", 5000)))); code != 413 {
		t.Fatalf("chunked large body: %d", code)
	}
}

func TestDeadOn5xxRetriesElsewhere(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.DeadOn5xx = true })
	broken := newBackend(t, "broken", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	fine := newBackend(t, "fine", nil)
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", broken.addr(), fine.addr())
	for range 10 {
		if res, body := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/"); res.StatusCode != 200 || body != "fine" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
	}
	if n := broken.hits.Load(); n != 1 {
		t.Fatalf("broken backend got %d requests, want 1 (then dead)", n)
	}
}

func TestActiveHealthChecks(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.ActiveCheckInterval = 10 * time.Millisecond })
	fx.b.run.Go("active checks", fx.b.activeChecks)
	var sick atomic.Bool
	sick.Store(true)
	be := newBackend(t, "checked", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}, HealthPath: "/health"})
	fx.announce(web, "n1", be.addr())
	dead := func(want bool) func() error {
		return func() error {
			if got := fx.b.TableView().Scopes[0].Backends[0].Dead; got != want {
				return fmt.Errorf("dead = %v, want %v", got, want)
			}
			return nil
		}
	}
	natstest.Eventually(t, 5*time.Second, dead(true))
	if res, _ := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/"); res.StatusCode != 503 {
		t.Fatalf("failing health check, still routed: %d", res.StatusCode)
	}
	sick.Store(false)
	natstest.Eventually(t, 5*time.Second, dead(false))
	if res, _ := get(t, fx.proxy.Client(), fx.proxy.URL, "web.localhost", "/"); res.StatusCode != 200 {
		t.Fatalf("healthy again, not routed: %d", res.StatusCode)
	}
}

func TestBrokenResponseSettlesInFlight(t *testing.T) {
	fx := newFixture(t, nil)
	be := newBackend(t, "broken", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", be.addr())
	req, _ := http.NewRequest(http.MethodGet, fx.proxy.URL+"/", nil)
	req.Host = "web.localhost"
	if res, err := fx.proxy.Client().Do(req); err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Fatal("a response cut mid-body reached the client whole")
		}
	}
	natstest.Eventually(t, 5*time.Second, func() error {
		if n := fx.b.Table().Pool(web).Backends[0].st.inflight.Load(); n != 0 {
			return fmt.Errorf("in flight %d after the request ended", n)
		}
		if n := fx.b.active.Load(); n != 0 {
			return fmt.Errorf("%d requests still active", n)
		}
		return nil
	})
}
