package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hoist-dev/hoist/api"
	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/nodeagent"
)

// chromium finds Debian's chromium; without it the browser tests skip
// loudly, or fail when HOIST_REQUIRE_BROWSER=1 (CI, after
// scripts/install-chromium.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HOIST_REQUIRE_BROWSER") == "1" {
		t.Fatal("HOIST_REQUIRE_BROWSER=1 but no chromium on the PATH (scripts/install-chromium.sh installs it)")
	}
	t.Skip("SKIPPED: no chromium on the PATH, so the dashboard is not tried in a browser (scripts/install-chromium.sh installs it; HOIST_REQUIRE_BROWSER=1 makes this a failure)")
	return ""
}

// devStack is hoist dev's parts in one test: NATS, a real agent running
// the demo backend as processes, the balancer and the API, wired as
// startDevAPI wires them.
type devStack struct {
	nats    *natstest.Server
	agent   *nodeagent.Agent
	bal     *balancer.Balancer
	balAddr string
	apiURL  string
}

func startDevStack(t *testing.T) *devStack {
	t.Helper()
	ns := natstest.Start(t)
	st := ns.Store(t)
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	rt, err := process.New(process.Config{Node: "dev", DataDir: filepath.Join(dir, "process"), Logger: log, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopReplicas(rt, true, log) })
	node := nodeagent.Node{Name: "dev", Advertise: "127.0.0.1", Scopes: []events.Scope{{Client: "acme", Environment: "dev", Solution: "web"}}}
	agent, err := nodeagent.Open(nodeagent.Options{
		Node: node, ReferenceFile: filepath.Join(dir, "reference.json"), Runtime: rt, RuntimeName: "process",
		Connect: func(context.Context) (*nats.Conn, error) {
			return store.Connect(store.ConnectOptions{URL: ns.URL(), Daemon: true})
		},
		Heartbeat: 500 * time.Millisecond, Deploy: deploy.Config{DrainDelay: 100 * time.Millisecond}, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	cfg := balancer.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	bal, err := balancer.New(cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := bal.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = bal.Run(ctx) })
	t.Cleanup(func() { cancel(); bal.Close(); wg.Wait() })

	srv, err := api.Open(api.Options{
		Store: st, Anonymous: &auth.Role{Kind: auth.KindAdmin, Name: "dev"}, AnonymousActor: "ana",
		Traffic: api.WriterTraffic(bal.WriteMetrics), ExtraMetrics: metricsWriters(agent.WriteMetrics, bal.WriteMetrics), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	wg.Go(func() { _ = serveAPI(actx, srv, ln) })
	t.Cleanup(func() { acancel(); srv.Close() })
	return &devStack{nats: ns, agent: agent, bal: bal, balAddr: bal.Addr("http").String(), apiURL: "http://" + ln.Addr().String()}
}

// browser starts a headless chromium and collects console errors,
// uncaught exceptions and browser log errors.
func browser(t *testing.T, exe string) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
	)
	msgs := chromedp.Console(ctx)
	wg.Go(func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// waitJS polls a JavaScript condition in the page.
func waitJS(cond string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		deadline := time.Now().Add(timeout)
		for {
			poll := chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(20*time.Millisecond))
			_, err := poll(ctx, t)
			if err == nil {
				return nil
			}
			// A page that is still loading can replace the JavaScript
			// context the poll runs in: poll again in the new one.
			if lost := strings.Contains(err.Error(), "Cannot find context with specified id") ||
				strings.Contains(err.Error(), "Execution context was destroyed"); !lost || time.Now().After(deadline) {
				return fmt.Errorf("waiting for %s: %w", cond, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

const (
	headIs    = `document.querySelector('[data-testid=head]')?.textContent === %q`
	appliedIs = `(() => { const a = document.querySelector('[data-testid=applied]'), h = document.querySelector('[data-testid=healthy]'); return a && h && a.textContent === %q && h.textContent === %q })()`
)

// screenshotPath is where a screenshot goes: docs/ when
// HOIST_SCREENSHOTS=1 (to refresh the committed ones), else a temp dir.
func screenshotPath(t *testing.T, name string) string {
	if os.Getenv("HOIST_SCREENSHOTS") == "1" {
		return filepath.Join("..", "..", "docs", "screenshots", name)
	}
	return filepath.Join(t.TempDir(), name)
}

func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := screenshotPath(t, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d KB)", path, len(png)/1024)
}

// TestDashboardInABrowser loads a scope page in headless chromium, publishes
// a deploy with the CLI and sees the new revision appear without a reload,
// rolls back with the button (confirm, If-Match) and sees the new revision
// and the replicas converge, at 1280 and 390 px, with no console error.
func TestDashboardInABrowser(t *testing.T) {
	exe := chromium(t)
	if testing.Short() {
		t.Skip("-short: the browser test starts chromium, an agent and replicas")
	}
	s := startDevStack(t)
	const scope = "acme.dev.web"
	demo := imagetest.DemoBinary(t)
	mustRun(t, 0, hoistAt(s.nats.URL(), "deploy", scope, "--command", demo, "--port", "8080", "--replicas", "2",
		"--health-path", "/up", "--host", "web.localhost", "--health-timeout", "20s"))

	ctx, problems := browser(t, exe)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.apiURL+"/scopes/"+scope),
		waitJS(fmt.Sprintf(headIs, "1"), 10*time.Second),
		waitJS(fmt.Sprintf(appliedIs, "1", "2/2"), 60*time.Second),
	); err != nil {
		t.Fatalf("load the scope page: %v", err)
	}

	// Traffic through the balancer, for the request-rate chart.
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	go func() {
		client := &http.Client{Timeout: time.Second}
		for tctx.Err() == nil {
			req, _ := http.NewRequestWithContext(tctx, "GET", "http://"+s.balAddr+"/", nil)
			req.Host = "web.localhost"
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond) // a steady trickle, not a load test
		}
	}()

	// A deploy with the CLI shows up without a reload.
	before := evalJS[string](t, ctx, `document.querySelector('[data-testid=head]').textContent`)
	mustRun(t, 0, hoistAt(s.nats.URL(), "deploy", scope, "--command", demo, "--env", "GREETING=hi"))
	published := time.Now()
	if err := chromedp.Do(ctx, waitJS(fmt.Sprintf(headIs, "2"), 10*time.Second)); err != nil {
		t.Fatalf("the new revision did not appear: %v", err)
	}
	t.Logf("revision 2 appeared in the page %v after the CLI returned", time.Since(published).Round(time.Millisecond))
	navigations := evalJS[int](t, ctx, `performance.getEntriesByType("navigation").length`)
	if err := chromedp.Do(ctx,
		waitJS(`document.querySelector('[data-part=timeline] li')?.textContent.includes('GREETING')`, 5*time.Second),
		waitJS(fmt.Sprintf(appliedIs, "2", "2/2"), 60*time.Second),
		waitJS(`[...document.querySelectorAll('[data-part=backends] tbody td:last-child')].some(td => parseFloat(td.textContent) > 0)`, 15*time.Second),
		waitJS(`(document.querySelector('.spark polyline')?.getAttribute('points') || '').split(' ').length >= 6`, 15*time.Second),
	); err != nil {
		t.Fatalf("after the deploy: %v", err)
	}
	if before != "1" || navigations != 1 {
		t.Fatalf("head before %q, navigations %d: the page reloaded", before, navigations)
	}
	saveScreenshot(t, ctx, "dashboard-scope-1280.png")

	// Roll back with the button: confirm, and the API gets If-Match.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-part=summary] button[data-rollback-to="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		waitJS(`document.getElementById('confirm-text').textContent.includes('revision 1')`, 5*time.Second),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			saveScreenshot(t, ctx, "dashboard-rollback-confirm.png")
			return nil
		}),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		waitJS(fmt.Sprintf(headIs, "3"), 10*time.Second),
		waitJS(`document.getElementById('action-result').textContent.includes('Published revision 3')`, 5*time.Second),
		waitJS(fmt.Sprintf(appliedIs, "3", "2/2"), 60*time.Second),
	); err != nil {
		t.Fatalf("roll back: %v (result %q, dialog open %v)", err, evalJS[string](t, ctx, `document.getElementById('action-result').textContent`), evalJS[bool](t, ctx, `document.getElementById('confirm').open`))
	}
	r := mustRun(t, 0, hoistAt(s.nats.URL(), "log", scope))
	if !strings.Contains(r.stdout, "rolled back to revision 1") || !strings.Contains(r.stdout, "ana") {
		t.Fatalf("the rollback is not in the log as the dashboard's user:\n%s", r.stdout)
	}

	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems:\n%s", strings.Join(p, "\n"))
	}

	// A stale head: someone publishes while the dialog is open, so the
	// button's If-Match no longer holds; nothing is published and the page
	// says why.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-part=summary] button[data-rollback-to]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		waitJS(`document.getElementById('confirm-text').textContent.includes('The head is revision 3')`, 5*time.Second),
	); err != nil {
		t.Fatalf("stale rollback: open the dialog: %v", err)
	}
	mustRun(t, 0, hoistAt(s.nats.URL(), "scale", scope, "2"))
	if err := chromedp.Do(ctx, waitJS(fmt.Sprintf(headIs, "4"), 10*time.Second),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		waitJS(`document.getElementById('action-result').textContent.includes('head moved to revision 4')`, 5*time.Second),
	); err != nil {
		t.Fatalf("stale rollback: %v (result %q)", err, evalJS[string](t, ctx, `document.getElementById('action-result').textContent`))
	}

	// Labels for keyboard and screen readers.
	unlabeled := evalJS[[]string](t, ctx, `[
		...[...document.querySelectorAll('button')].filter(b => !(b.textContent.trim() || b.getAttribute('aria-label'))).map(b => 'button ' + b.outerHTML),
		...[...document.querySelectorAll('select, input:not([type=hidden])')].filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => 'field ' + e.outerHTML),
		...[...document.querySelectorAll('table')].filter(t => !t.querySelector('caption')).map(t => 'table without caption'),
		...[...document.querySelectorAll('svg')].filter(s => !s.getAttribute('aria-label')).map(s => 'svg without label'),
	]`)
	if len(unlabeled) > 0 {
		t.Errorf("unlabeled: %v", unlabeled)
	}

	// 390 px wide: nothing wider than the screen.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Reload(),
		waitJS(fmt.Sprintf(headIs, "4"), 10*time.Second),
		waitJS(fmt.Sprintf(appliedIs, "4", "2/2"), 60*time.Second),
	); err != nil {
		t.Fatal(err)
	}
	overflow := evalJS[int](t, ctx, `document.documentElement.scrollWidth - window.innerWidth`)
	if overflow > 0 {
		t.Errorf("at 390 px the page is %d px wider than the screen", overflow)
	}
	saveScreenshot(t, ctx, "dashboard-scope-390.png")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.apiURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/scopes/acme.dev.web"]`))); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, ctx, "dashboard-scopes-1280.png")
	stopTraffic()

	// Only the 412 of the stale rollback, which the browser logs as a
	// failed load.
	for _, p := range problems() {
		if !strings.Contains(p, "status of 412") {
			t.Errorf("the browser reported a problem: %s", p)
		}
	}

	// /metrics of the dev stack: the API's, the agent's and the
	// balancer's, all parsed by Prometheus' own parser.
	resp, err := http.Get(s.apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, name := range []string{"hoist_api_requests_total", "hoist_agent_applied_revision", "hoist_agent_healthy_replicas", "hoist_balancer_requests_total"} {
		if fams[name] == nil {
			t.Errorf("no %s in /metrics", name)
		}
	}
}
