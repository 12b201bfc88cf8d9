package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// trafficRig is a real balancer fed by an embedded NATS server, serving
// on a real port, in front of one real backend, with the test as the
// scope's agent: it publishes backends reports with a Traffic, as an
// agent does when it folds a pause or a maintenance page.
type trafficRig struct {
	t      *testing.T
	srv    *natstest.Server
	pub    *publisher
	bal    *Balancer
	be     *backend
	base   string
	client *http.Client
	rev    uint64
}

func newTrafficRig(t *testing.T, mutate func(*Config), h http.HandlerFunc) *trafficRig {
	t.Helper()
	srv := natstest.Start(t)
	r := &trafficRig{t: t, srv: srv, pub: &publisher{t: t, st: srv.Store(t)}, be: newBackend(t, "B1", h)}
	r.report(nil)
	r.bal = r.serve(mutate)
	r.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 20 * time.Second}
	t.Cleanup(r.client.CloseIdleConnections)
	r.waitPool(r.bal, func(p *Pool) error {
		if len(p.Backends) != 1 {
			return fmt.Errorf("backends %v", p.Backends)
		}
		return nil
	})
	return r
}

// serve starts a balancer on the rig's streams and serves it over HTTP.
func (r *trafficRig) serve(mutate func(*Config)) *Balancer {
	r.t.Helper()
	b := natsBalancer(r.t, r.srv, mutate)
	proxy := httptest.NewUnstartedServer(b.Handler())
	proxy.Config.BaseContext = func(net.Listener) context.Context { return b.reqCtx }
	proxy.Start()
	r.t.Cleanup(proxy.Close)
	if r.base == "" {
		r.base = proxy.URL
	}
	return b
}

// report publishes the scope's report at the next revision with tr.
func (r *trafficRig) report(tr *events.Traffic) {
	r.t.Helper()
	r.rev++
	r.pub.report(events.BackendsReport{Node: "node-1", Scope: web, Revision: r.rev, Backends: []string{r.be.addr()},
		Hosts: []string{"web.localhost"}, Traffic: tr})
}

func pause(max time.Duration) *events.Traffic {
	return &events.Traffic{Paused: &events.Pause{Since: time.Now().UTC(), Max: events.Duration(max)}}
}

// waitPool polls b's table until web's pool satisfies cond.
func (r *trafficRig) waitPool(b *Balancer, cond func(*Pool) error) {
	r.t.Helper()
	natstest.Eventually(r.t, 10*time.Second, func() error {
		t := b.Table()
		if t == nil || t.Pool(web) == nil {
			return errors.New("no pool of web yet")
		}
		if err := cond(t.Pool(web)); err != nil {
			return fmt.Errorf("%w\n%s", err, t)
		}
		return nil
	})
}

func (r *trafficRig) waitPaused(b *Balancer, paused bool) {
	r.t.Helper()
	r.waitPool(b, func(p *Pool) error {
		if p.holds() != paused {
			return fmt.Errorf("holds = %v, want %v", p.holds(), paused)
		}
		return nil
	})
}

// waitHeld polls until b holds n requests of web.
func (r *trafficRig) waitHeld(b *Balancer, n int) {
	r.t.Helper()
	natstest.Eventually(r.t, 10*time.Second, func() error {
		if got := b.Table().Pool(web).live.hold.held(); got != n {
			return fmt.Errorf("held %d, want %d", got, n)
		}
		return nil
	})
}

type answer struct {
	code  int
	body  string
	hdr   http.Header
	err   error
	taken time.Duration
}

func (r *trafficRig) do(ctx context.Context, path, accept string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Host = "web.localhost"
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	start := time.Now()
	res, err := r.client.Do(req)
	if err != nil {
		return answer{err: err, taken: time.Since(start)}
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return answer{code: res.StatusCode, body: string(body), hdr: res.Header, err: err, taken: time.Since(start)}
}

// goDo sends a request in the background; its answer comes on the channel.
func (r *trafficRig) goDo(ctx context.Context, path string) <-chan answer {
	ch := make(chan answer, 1)
	go func() { ch <- r.do(ctx, path, "") }()
	return ch
}

func checkRetryAfter(t *testing.T, a answer) {
	t.Helper()
	n, err := strconv.Atoi(a.hdr.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", a.hdr.Get("Retry-After"))
	}
}

// TestPauseHoldsAndReleases: 200 concurrent requests of a paused scope
// are held (none reaches the backend), and every one gets the backend's
// 200 on resume. A request in flight when the pause began is not held.
func TestPauseHoldsAndReleases(t *testing.T) {
	slow := make(chan struct{})
	r := newTrafficRig(t, nil, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			<-slow
		}
		_, _ = io.WriteString(w, "B1")
	})
	inflight := r.goDo(t.Context(), "/slow")
	natstest.Eventually(t, 10*time.Second, func() error {
		if r.be.hits.Load() != 1 {
			return errors.New("the slow request has not reached the backend")
		}
		return nil
	})

	r.report(pause(time.Minute))
	r.waitPaused(r.bal, true)
	close(slow)
	if a := <-inflight; a.err != nil || a.code != http.StatusOK {
		t.Fatalf("request in flight at the pause: %d %v, want 200", a.code, a.err)
	}

	const n = 200
	answers := make([]<-chan answer, n)
	for i := range answers {
		answers[i] = r.goDo(t.Context(), "/")
	}
	r.waitHeld(r.bal, n)
	if hits := r.be.hits.Load(); hits != 1 {
		t.Fatalf("the backend got %d requests while paused, want only the one in flight", hits-1)
	}
	var metrics strings.Builder
	_ = r.bal.WriteMetrics(&metrics)
	if want := `hoist_balancer_held_requests{scope="acme.prod.web"} 200`; !strings.Contains(metrics.String(), want) {
		t.Errorf("metrics lack %s:\n%s", want, metrics.String())
	}
	if v := r.bal.TableView().Scopes[0].Paused; v == nil || v.Held != n {
		t.Errorf("table view paused = %+v, want %d held", v, n)
	}

	r.report(nil) // resumed
	failures := 0
	for _, ch := range answers {
		if a := <-ch; a.err != nil || a.code != http.StatusOK || a.body != "B1" {
			failures++
			t.Logf("answer: %d %q %v", a.code, a.body, a.err)
		}
	}
	if failures != 0 {
		t.Fatalf("%d of %d held requests failed after the resume, want 0", failures, n)
	}
	if hits := r.be.hits.Load(); hits != n+1 {
		t.Fatalf("backend hits = %d, want %d", hits, n+1)
	}
	r.waitHeld(r.bal, 0)
}

// TestPauseMax: a request held past the pause's Max gets 503 with
// Retry-After and a body that says the site is paused.
func TestPauseMax(t *testing.T) {
	r := newTrafficRig(t, nil, nil)
	const max = 300 * time.Millisecond
	r.report(pause(max))
	r.waitPaused(r.bal, true)
	for _, tc := range []struct{ accept, ctype, want string }{
		{"", "text/plain", "paused"},
		{"application/json", "application/json", `"error":"paused"`},
	} {
		a := r.do(t.Context(), "/", tc.accept)
		if a.err != nil || a.code != http.StatusServiceUnavailable {
			t.Fatalf("Accept %q: %d %v, want 503", tc.accept, a.code, a.err)
		}
		checkRetryAfter(t, a)
		if !strings.HasPrefix(a.hdr.Get("Content-Type"), tc.ctype) || !strings.Contains(a.body, tc.want) {
			t.Fatalf("Accept %q: %s %q, want %s with %q", tc.accept, a.hdr.Get("Content-Type"), a.body, tc.ctype, tc.want)
		}
		if a.taken < max {
			t.Fatalf("answered after %s, before the pause's max %s", a.taken, max)
		}
	}
	if r.be.hits.Load() != 0 {
		t.Fatal("a request reached the backend while paused")
	}
	r.waitHeld(r.bal, 0)
}

// TestPauseQueueBound: past --pause-queue, a request gets 503 at once; a
// client that goes away leaves the queue; the held ones still get 200.
func TestPauseQueueBound(t *testing.T) {
	r := newTrafficRig(t, func(c *Config) { c.PauseQueue = 3 }, nil)
	r.report(pause(time.Hour))
	r.waitPaused(r.bal, true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	held := []<-chan answer{r.goDo(t.Context(), "/"), r.goDo(t.Context(), "/")}
	gone := r.goDo(ctx, "/")
	r.waitHeld(r.bal, 3)

	// An hour's pause: only the bound can answer this before the
	// client's timeout.
	a := r.do(t.Context(), "/", "")
	if a.err != nil || a.code != http.StatusServiceUnavailable {
		t.Fatalf("past the bound: %d %v, want 503", a.code, a.err)
	}
	checkRetryAfter(t, a)

	cancel()
	if a := <-gone; a.err == nil {
		t.Fatalf("a cancelled request was answered %d", a.code)
	}
	r.waitHeld(r.bal, 2) // the client that went away left the queue
	held = append(held, r.goDo(t.Context(), "/"))
	r.waitHeld(r.bal, 3)

	r.report(nil)
	for _, ch := range held {
		if a := <-ch; a.err != nil || a.code != http.StatusOK {
			t.Fatalf("held request after resume: %d %v", a.code, a.err)
		}
	}
	r.waitHeld(r.bal, 0)
}

// TestMaintenancePage: maintenance answers every request 503 with the
// message, escaped in HTML, as JSON or plain text by Accept; it wins over
// a pause and releases what the pause held; off restores service.
func TestMaintenancePage(t *testing.T) {
	r := newTrafficRig(t, nil, nil)
	const msg = `Back at 10:00 <script>alert("x")</script> & thanks`
	since := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

	// Paused first, with a request held: maintenance releases it into
	// the page.
	r.report(pause(time.Hour))
	r.waitPaused(r.bal, true)
	held := r.goDo(t.Context(), "/")
	r.waitHeld(r.bal, 1)
	r.report(&events.Traffic{Paused: pause(time.Hour).Paused, Maintenance: &events.Maintenance{Since: since, Message: msg}})
	if a := <-held; a.err != nil || a.code != http.StatusServiceUnavailable || !strings.Contains(a.body, "Back at 10:00") {
		t.Fatalf("held request when maintenance began: %d %q %v, want the maintenance page", a.code, a.body, a.err)
	}

	for _, tc := range []struct {
		accept, ctype string
		check         func(body string) error
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html", func(body string) error {
			if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; thanks") {
				return errors.New("the message is not escaped")
			}
			return nil
		}},
		{"application/json", "application/json", func(body string) error {
			var v struct {
				Status  int       `json:"status"`
				Error   string    `json:"error"`
				Message string    `json:"message"`
				Since   time.Time `json:"since"`
			}
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				return err
			}
			if v.Status != 503 || v.Error != "maintenance" || v.Message != msg || !v.Since.Equal(since) {
				return fmt.Errorf("decoded %+v", v)
			}
			return nil
		}},
		{"*/*", "text/plain", func(body string) error {
			if !strings.Contains(body, msg) || !strings.HasPrefix(body, "503 Service Unavailable") {
				return errors.New("no plain message")
			}
			return nil
		}},
	} {
		a := r.do(t.Context(), "/", tc.accept)
		if a.err != nil || a.code != http.StatusServiceUnavailable {
			t.Fatalf("Accept %q: %d %v, want 503", tc.accept, a.code, a.err)
		}
		checkRetryAfter(t, a)
		if ct := a.hdr.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
			t.Fatalf("Accept %q: Content-Type %q, want %s", tc.accept, ct, tc.ctype)
		}
		if err := tc.check(a.body); err != nil {
			t.Fatalf("Accept %q: %v in\n%s", tc.accept, err, a.body)
		}
	}
	if r.be.hits.Load() != 0 {
		t.Fatal("a request reached the backend in maintenance")
	}

	r.report(nil) // maintenance off and resumed
	r.waitPool(r.bal, func(p *Pool) error {
		if p.Maintenance != nil || p.Paused != nil {
			return errors.New("still in maintenance")
		}
		return nil
	})
	if a := r.do(t.Context(), "/", "text/html"); a.err != nil || a.code != http.StatusOK || a.body != "B1" {
		t.Fatalf("after maintenance off: %d %q %v, want 200 B1", a.code, a.body, a.err)
	}
}

// TestPauseSurvivesRestart: a balancer started during a pause reads the
// reports and holds too; one that closes answers what it holds at once.
func TestPauseSurvivesRestart(t *testing.T) {
	r := newTrafficRig(t, nil, nil)
	r.report(pause(time.Hour))
	r.waitPaused(r.bal, true)
	r.base = ""
	second := r.serve(nil)
	r.waitPaused(second, true)
	if r.bal.Table().Digest() != second.Table().Digest() {
		t.Fatalf("two balancers on the same reports disagree:\n%s\n%s", r.bal.Table(), second.Table())
	}
	held := r.goDo(t.Context(), "/")
	r.waitHeld(second, 1)
	var wg sync.WaitGroup
	wg.Go(func() { second.Close() })
	if a := <-held; a.err != nil || a.code != http.StatusServiceUnavailable {
		t.Fatalf("held request at close: %d %v, want 503", a.code, a.err)
	}
	wg.Wait()
}
