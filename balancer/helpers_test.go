package balancer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
	"github.com/hoist-dev/hoist/internal/natstest"
)

var (
	web = events.MustParseScope("acme.prod.web")
	api = events.MustParseScope("acme.prod.api")
)

// testLogger discards logs unless HOIST_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("HOIST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is DefaultConfig on free ports, with short timeouts.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen, cfg.TLSListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.DialTimeout = 2 * time.Second
	return cfg
}

// fixture is a balancer whose table the test sets directly, with no NATS:
// for proxy behaviour.
type fixture struct {
	b     *Balancer
	f     *folded
	reg   *registry
	proxy *httptest.Server
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(cfg, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{b: b, f: newFolded(), reg: newRegistry()}
	b.run = lifecycle.New(context.Background(), testLogger(), 0)
	b.run.Go("cache sweeper", b.sweepCaches)
	fx.proxy = httptest.NewUnstartedServer(b.Handler())
	fx.proxy.Config.BaseContext = func(net.Listener) context.Context { return b.reqCtx }
	fx.proxy.Start()
	t.Cleanup(func() {
		b.Close()
		fx.proxy.Close()
	})
	return fx
}

// rebuild publishes a table from the fixture's folded state.
func (fx *fixture) rebuild() *Table {
	t := buildTable(fx.f, fx.b.buildOptions(), fx.b.cfg.Now(), fx.reg)
	fx.b.publish(t)
	return t
}

// deploy folds a Deployed event for scope with hosts.
func (fx *fixture) deploy(t *testing.T, sc events.Scope, spec events.Spec) {
	t.Helper()
	h := testHistories[fx.f][sc]
	rev := uint64(1)
	if h != nil {
		rev = h.Revision() + 1
	}
	if spec.Image == "" && len(spec.Command) == 0 {
		spec.Image = "demo:1"
	}
	e := &events.Event{Kind: events.KindDeployed, Scope: sc, Revision: rev, ID: fmt.Sprint(rev), Data: &events.Deployed{Spec: spec}}
	if err := fx.f.applyEvent(e); err != nil {
		t.Fatal(err)
	}
	fx.rebuild()
}

func (fx *fixture) announce(sc events.Scope, node string, backends ...string) {
	fx.f.applyReport(reportRecord(&events.BackendsReport{Node: node, Scope: sc, Backends: backends}))
	fx.rebuild()
}

func (fx *fixture) score(t *testing.T, sc events.Scope, backend string, n int) {
	t.Helper()
	e := &events.Event{Kind: events.KindBackendScored, Scope: sc, Time: time.Now(), Data: &events.BackendScored{Backend: backend, Score: n}}
	if err := fx.f.applyScore(e); err != nil {
		t.Fatal(err)
	}
	fx.rebuild()
}

// backend is an httptest server that counts its hits and names itself.
type backend struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func (be *backend) addr() string { return strings.TrimPrefix(be.URL, "http://") }

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	be := &backend{name: name}
	be.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		be.hits.Add(1)
		w.Header().Set("X-Backend", name)
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(be.Close)
	return be
}

// get sends a request with Host through the proxy at base.
func get(t *testing.T, client *http.Client, base, host, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

// natsBalancer runs a balancer fed by the embedded server srv.
func natsBalancer(t *testing.T, srv *natstest.Server, mutate func(*Config)) *Balancer {
	t.Helper()
	return natsBalancerLog(t, srv, mutate, testLogger())
}

// natsBalancerLog is natsBalancer logging to log.
func natsBalancerLog(t *testing.T, srv *natstest.Server, mutate func(*Config), log *slog.Logger) *Balancer {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(cfg, srv.Store(t), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitWeight polls until scope's backend has weight w in b's table.
func waitWeight(t *testing.T, b *Balancer, sc events.Scope, addr string, w int) {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, func() error {
		tb := b.Table()
		if tb == nil {
			return fmt.Errorf("no table yet")
		}
		got, ok := tb.Weight(sc, addr)
		if !ok || got != w {
			return fmt.Errorf("weight of %s in %s is %d (present %v), want %d\n%s", addr, sc, got, ok, w, tb)
		}
		return nil
	})
}

// publisher publishes events the way the CLI and agents do.
type publisher struct {
	t  *testing.T
	st *store.Store
}

func (p *publisher) deploy(sc events.Scope, spec events.Spec) {
	p.t.Helper()
	if spec.Image == "" {
		spec.Image = "demo:1"
	}
	ev, err := p.st.Append(p.t.Context(), &events.Event{Scope: sc, Actor: "test", Data: &events.Deployed{Spec: spec}}, store.AppendOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	// What an agent reports of that deploy: the balancer reads no config
	// event, only the hosts agents report with their backends.
	rep := &events.BackendsReport{Node: "desired", Scope: sc, Revision: ev.Revision, Backends: []string{}, Time: time.Now(),
		Hosts: spec.Hosts, HealthPath: spec.HealthPath, Cache: spec.Cache}
	if err := p.st.PublishBackends(p.t.Context(), rep); err != nil {
		p.t.Fatal(err)
	}
}

func (p *publisher) announce(sc events.Scope, node string, backends ...string) {
	p.t.Helper()
	if backends == nil {
		backends = []string{}
	}
	if err := p.st.PublishBackends(p.t.Context(), &events.BackendsReport{Node: node, Scope: sc, Backends: backends, Time: time.Now()}); err != nil {
		p.t.Fatal(err)
	}
}

// report publishes a backends report as an agent does, hosts and all.
func (p *publisher) report(r events.BackendsReport) {
	p.t.Helper()
	if r.Backends == nil {
		r.Backends = []string{}
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if err := p.st.PublishBackends(p.t.Context(), &r); err != nil {
		p.t.Fatal(err)
	}
}

func (p *publisher) score(sc events.Scope, backend string, n int) {
	p.t.Helper()
	if _, err := p.st.Append(p.t.Context(), &events.Event{Scope: sc, Actor: "test", Data: &events.BackendScored{Backend: backend, Score: n}}, store.AppendOptions{}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *publisher) node(name string, drained bool) {
	p.t.Helper()
	var d events.Payload = &events.NodeUndrained{}
	if drained {
		d = &events.NodeDrained{Reason: "test"}
	}
	if _, err := p.st.Append(p.t.Context(), &events.Event{Node: name, Actor: "test", Data: d}, store.AppendOptions{}); err != nil {
		p.t.Fatal(err)
	}
}
