package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// balancerTestRun runs one CLI command in-process.
func balancerTestRun(url string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"hoist", "--nats-url", url}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAnnounceValidatesBeforePublishing(t *testing.T) {
	srv := natstest.Start(t)
	for _, args := range [][]string{
		{"announce"},
		{"announce", "acme.prod"},
		{"announce", "ACME.prod.web", "10.0.0.1:80"},
		{"announce", "acme.prod.web", "10.0.0.1"},
		{"announce", "acme.prod.web", "10.0.0.1:0"},
		{"announce", "acme.prod.web", "bad_host:80"},
		{"announce", "acme.prod.web", "10.0.0.1:80", "10.0.0.1:80"},
		{"announce", "acme.prod.web", "10.0.0.1:80", "--node", "Node_1"},
		{"balancer", "--default-score", "101"},
		{"balancer", "--default-scope", "web"},
		{"balancer", "--tls-cert", "a.pem"},
		{"balancer", "--listen", "nowhere"},
		{"balancer", "--dead-ttl", "0s"},
		{"balancer", "--error-pages", "/does/not/exist"},
		{"balancer", "extra-arg"},
	} {
		code, _, stderr := balancerTestRun(srv.URL(), args...)
		if code != exitUsage || stderr == "" {
			t.Errorf("hoist %s: exit %d, stderr %q; want exit 2 with a message", strings.Join(args, " "), code, stderr)
		}
	}
	reports, err := srv.Store(t).BackendReports(t.Context(), events.MustParseScope("acme.prod.web"))
	if err != nil || len(reports) != 0 {
		t.Fatalf("bad input published %d reports (%v)", len(reports), err)
	}
}

func TestAnnounceAndWithdraw(t *testing.T) {
	srv := natstest.Start(t)
	web := events.MustParseScope("acme.prod.web")
	code, out, stderr := balancerTestRun(srv.URL(), "announce", "acme.prod.web", "10.0.0.1:80", "10.0.0.2:80", "--node", "edge-1")
	if code != 0 || !strings.Contains(out, "node edge-1 announces 2 backend(s)") {
		t.Fatalf("announce: %d %q %q", code, out, stderr)
	}
	reports, err := srv.Store(t).BackendReports(t.Context(), web)
	if err != nil || len(reports) != 1 || reports[0].Node != "edge-1" || len(reports[0].Backends) != 2 {
		t.Fatalf("reports %+v %v", reports, err)
	}
	if code, out, _ := balancerTestRun(srv.URL(), "announce", "acme.prod.web", "--node", "edge-1"); code != 0 || !strings.Contains(out, "withdrew") {
		t.Fatalf("withdraw: %d %q", code, out)
	}
	reports, _ = srv.Store(t).BackendReports(t.Context(), web)
	if len(reports) != 1 || len(reports[0].Backends) != 0 {
		t.Fatalf("after withdraw: %+v", reports)
	}
}

// TestBalancerCommand runs 'hoist balancer' in-process against announced
// backends, and stops it as SIGTERM would.
func TestBalancerCommand(t *testing.T) {
	srv := natstest.Start(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }))
	defer be.Close()
	addr := strings.TrimPrefix(be.URL, "http://")
	for _, args := range [][]string{
		{"deploy", "acme.prod.web", "--image", "demo:1", "--host", "web.localhost"},
		// No agent runs the scope: the announce says which hosts route to
		// its backends, as an agent's report would.
		{"announce", "acme.prod.web", addr, "--host", "web.localhost"},
	} {
		if code, _, stderr := balancerTestRun(srv.URL(), args...); code != 0 {
			t.Fatalf("hoist %v: %d %s", args, code, stderr)
		}
	}
	listen, metrics := balancerTestAddr(t), balancerTestAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs natstest.SyncBuffer
	go func() {
		app := newApp(io.Discard, &logs)
		argv := reorderArgs(app, []string{"hoist", "--nats-url", srv.URL(), "balancer", "--listen", listen, "--metrics", metrics})
		done <- app.RunContext(ctx, argv)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("balancer exited with %v\n%s", err, logs.String())
		}
	}()
	request := func(host string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(body)
	}
	natstest.Eventually(t, 15*time.Second, func() error {
		if code, body := request("web.localhost"); code != 200 || body != "hello" {
			return fmt.Errorf("%d %q\n%s", code, body, logs.String())
		}
		return nil
	})
	if code, _ := request("nope.localhost"); code != 404 {
		t.Fatalf("unknown host: %d", code)
	}
	res, err := http.Get("http://" + metrics + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	// No backends, the host kept: 503 (and with no host at all, 404).
	if code, _, _ := balancerTestRun(srv.URL(), "announce", "acme.prod.web", "--host", "web.localhost"); code != 0 {
		t.Fatal("withdraw failed")
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if code, _ := request("web.localhost"); code != 503 {
			return fmt.Errorf("status %d after withdrawing every backend", code)
		}
		return nil
	})
}

// balancerTestAddr returns a loopback address with a port that was free a moment ago.
func balancerTestAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
