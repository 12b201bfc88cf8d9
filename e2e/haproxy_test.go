package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/haproxy"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// TestHAProxy is issue 12's HAProxy scenario: a real HAProxy (Debian's)
// in front of two agents' process replicas, kept on them by `hoist
// haproxy` through the Runtime API, follows five rollouts and a scale-down
// under steady load with no failed request. A second HAProxy, configured
// the old way (static server lines on the first replicas' ports), takes
// the same load through the same steps, for comparison: its failures are
// measured and logged, not asserted away.
func TestHAProxy(t *testing.T) {
	needHoist(t)
	bin := requireHAProxy(t)
	demo := imagetest.DemoBinary(t)
	c := startCluster(t, "process", nil, demo)
	sc := c.scope
	dir := t.TempDir()

	c.hoist(t, 0, "deploy", sc, "--replicas", "2", "--port", "8080", "--health-path", "/up", "--host", host,
		"--health-timeout", "8s", "--command", strconv.Quote(demo))
	c.hoist(t, 0, "wait", sc, "--timeout", "90s")
	first := c.backends(t, 4)

	synced := startHAProxy(t, bin, dir, "synced", "server-template hoist 8 127.0.0.1:1 disabled check inter 1s weight 100")
	var static []string
	for i, be := range first {
		static = append(static, fmt.Sprintf("server s%d %s check inter 1s weight 100", i+1, be))
	}
	old := startHAProxy(t, bin, dir, "static", static...)

	env := []string{"HOIST_NATS_URL=" + c.natsURL, "HOIST_LOG_FORMAT=json"}
	sync := startProc(t, "hoist haproxy", env, "haproxy", "--socket", synced.socket, "--backend", "web="+sc, "--interval", "500ms")
	rt, err := haproxy.NewRuntime(synced.socket, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitServers(t, rt, first)

	s := &scenario{c: c, lg: startLoad(t, synced.url, host, "deploy 2 per node")}
	ref := startLoad(t, old.url, host, "deploy 2 per node")
	var total, refTotal struct{ sent, failed int64 }
	// step checks that the synced HAProxy serves exactly the scope's
	// replicas, all of revision rev, and closes the step's figures.
	step := func(name string, converged time.Duration, want []string, head string) {
		t.Helper()
		waitServers(t, rt, want)
		as := s.lg.collect(t, 200, time.Minute)
		if revs := count(as, func(a answer) string { return a.Revision }); !maps.Equal(revs, map[string]int{head: len(as)}) {
			t.Errorf("%s: answers through the synced HAProxy by revision = %v, want all from %s", name, revs, head)
		}
		r := ref.setStep(name)
		st := s.endStep(t, converged, "publish → wait 0", true)
		total.sent, total.failed = total.sent+st.sent.Load(), total.failed+st.failed.Load()
		refTotal.sent, refTotal.failed = refTotal.sent+r.sent.Load(), refTotal.failed+r.failed.Load()
		t.Logf("static HAProxy, same step: %s", r)
	}
	step("deploy 2 per node", 0, first, c.revision(t))
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("rollout %d (env)", i)
		s.lg.setStep(name)
		ref.setStep(name)
		took := s.publishAndWait(t, "env", sc, "VERSION="+strconv.Itoa(i))
		step(name, took, c.backends(t, 4), c.revision(t))
	}
	s.lg.setStep("scale down to 1 per node")
	ref.setStep("scale down to 1 per node")
	rev := c.revision(t) // a scale-down keeps the replicas of the last rollout
	took := s.publishAndWait(t, "scale", sc, "1")
	step("scale down to 1 per node", took, c.backends(t, 2), rev)

	// A canary at 50%: HAProxy's weights carry the split (hoist haproxy
	// scales each side to its share), and an abort drops it.
	s.lg.setStep("canary at 50%")
	ref.setStep("canary at 50%")
	start := time.Now()
	c.hoist(t, 0, "deploy", sc, "--canary", "50", "--env", "VERSION=canary")
	c.hoist(t, 0, "wait", sc, "--timeout", "90s")
	canaryRev := c.revision(t)
	waitServers(t, rt, c.backends(t, 4))
	as := s.lg.collect(t, 400, time.Minute)
	revs := count(as, func(a answer) string { return a.Revision })
	if n := revs[canaryRev]; n < 160 || n > 240 || n+revs[rev] != len(as) {
		t.Errorf("canary at 50%%: answers by revision %v, want about half of %d from the canary's %s, the rest from %s", revs, len(as), canaryRev, rev)
	}
	st := s.endStep(t, time.Since(start), "publish → wait 0", true)
	total.sent, total.failed = total.sent+st.sent.Load(), total.failed+st.failed.Load()
	s.lg.setStep("canary aborted")
	ref.setStep("canary aborted")
	start = time.Now()
	c.hoist(t, 0, "abort", sc)
	c.hoist(t, 0, "wait", sc, "--timeout", "90s")
	waitServers(t, rt, c.backends(t, 2))
	if revs := count(s.lg.collect(t, 200, time.Minute), func(a answer) string { return a.Revision }); revs[canaryRev] > 0 {
		t.Errorf("after the abort: answers by revision %v, want none from the canary's %s", revs, canaryRev)
	}
	st = s.endStep(t, time.Since(start), "publish → wait 0", true)
	total.sent, total.failed = total.sent+st.sent.Load(), total.failed+st.failed.Load()

	s.lg.stop()
	ref.stop()
	t.Logf("synced HAProxy (hoist haproxy): %d requests, %d failed, over 5 rollouts, 1 scale-down, a canary at 50%% and its abort", total.sent, total.failed)
	t.Logf("static HAProxy (server lines):  %d requests, %d failed, same steps", refTotal.sent, refTotal.failed)
	changes := strings.Count(sync.log.String(), `"msg":"HAProxy server changed"`)
	t.Logf("hoist haproxy made %d server changes; %s", changes, drainLag(t, c, sync))
	if total.failed > 0 {
		t.Errorf("%d of %d requests through the synced HAProxy failed, want none", total.failed, total.sent)
	}
}

// drainLag measures, for each replica an agent withdrew, how long after
// the agent's announcement hoist haproxy drained its server: the agent
// stops the replica one drain delay (1s here) after it announced.
func drainLag(t *testing.T, c *cluster, sync *proc) string {
	t.Helper()
	type line struct {
		Time          time.Time
		Msg, To, Addr string
		Backends      []string
	}
	read := func(log string) []line {
		var out []line
		for l := range strings.Lines(log) {
			var v line
			if json.Unmarshal([]byte(l), &v) == nil {
				out = append(out, v)
			}
		}
		return out
	}
	drained := map[string]time.Time{} // addr → first drain
	for _, l := range read(sync.log.String()) {
		if l.Msg == "HAProxy server changed" && l.To == "drain" && drained[l.Addr].IsZero() {
			drained[l.Addr] = l.Time
		}
	}
	var lags []time.Duration
	missed := 0
	for _, a := range c.agents {
		var prev []string
		for _, l := range read(a.log.String()) {
			if l.Msg != "announced backends" {
				continue
			}
			for _, be := range prev {
				if slices.Contains(l.Backends, be) {
					continue
				}
				if at, ok := drained[be]; ok {
					lags = append(lags, at.Sub(l.Time))
				} else {
					missed++
				}
			}
			prev = l.Backends
		}
	}
	if len(lags) == 0 {
		return "no withdrawn replica seen"
	}
	slices.Sort(lags)
	return fmt.Sprintf("withdrawn replicas drained in HAProxy after the agent's announcement: n=%d, min %s, median %s, max %s (missed %d)",
		len(lags), lags[0].Round(time.Millisecond/10), lags[len(lags)/2].Round(time.Millisecond/10), lags[len(lags)-1].Round(time.Millisecond/10), missed)
}

// requireHAProxy returns the haproxy binary, or skips (loudly) without
// one; under HOIST_REQUIRE_HAPROXY=1 (CI) a missing haproxy fails.
func requireHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("HOIST_REQUIRE_HAPROXY") == "1" {
			t.Fatalf("HOIST_REQUIRE_HAPROXY=1 and no haproxy on the PATH: run scripts/install-haproxy.sh")
		}
		t.Skip("SKIPPED: no haproxy on the PATH (scripts/install-haproxy.sh installs it; HOIST_REQUIRE_HAPROXY=1 makes this a failure)")
	}
	return bin
}

// haproxyProc is an HAProxy the test started, in the foreground.
type haproxyProc struct {
	url, socket string
}

// startHAProxy writes a configuration with one backend "web" of the given
// server lines into dir and runs haproxy -db on it, on a free port. It is
// stopped (its PID) when the test ends.
func startHAProxy(t *testing.T, bin, dir, name string, servers ...string) *haproxyProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &haproxyProc{url: "http://" + addr, socket: filepath.Join(dir, name+".sock")}
	conf := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend fe
    bind %s
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /up
    %s
`, h.socket, addr, strings.Join(servers, "\n    "))
	cfg := filepath.Join(dir, name+".cfg")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	out := &natstest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- haproxy %s (pid %d):\n%s", name, cmd.Process.Pid, tail(out.String(), 40))
		}
	})
	eventually(t, 30*time.Second, "haproxy "+name+" listens", func() error {
		select {
		case <-done:
			t.Fatalf("haproxy %s exited: %s", name, out.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return h
}

// backends polls hoist status until the scope has n healthy replicas at
// the head revision, and returns their host:port.
func (c *cluster) backends(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	eventually(t, 60*time.Second, fmt.Sprintf("%d healthy replicas", n), func() error {
		views, err := c.status(t)
		if err != nil {
			return err
		}
		out = nil
		for _, v := range views {
			if v.Scope.String() != c.scope {
				continue
			}
			for _, r := range v.Replicas {
				if r.Healthy && r.Backend != "" {
					out = append(out, r.Backend)
				}
			}
		}
		if len(out) != n {
			return fmt.Errorf("%d healthy replicas: %v", len(out), out)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// revision is the scope's head revision.
func (c *cluster) revision(t *testing.T) string {
	t.Helper()
	st, err := decodeJSON[struct{ Revision uint64 }](c.hoist(t, 0, "state", c.scope, "--json").stdout)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(st.Revision, 10)
}

// waitServers waits until HAProxy's backend "web" has exactly the servers
// want ready (show servers state), and every other server in maintenance.
func waitServers(t *testing.T, rt *haproxy.Runtime, want []string) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("HAProxy serves %v", want), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		servers, err := rt.Servers(ctx, "web")
		if err != nil {
			return err
		}
		var ready []string
		for _, s := range servers {
			switch {
			case !s.Admin.Maint() && !s.Admin.Drain():
				ready = append(ready, net.JoinHostPort(s.Addr.String(), strconv.Itoa(s.Port)))
			case !s.Admin.Maint():
				return fmt.Errorf("%s still draining (%d sessions)", s.Name, s.Sessions)
			}
		}
		slices.Sort(ready)
		if !slices.Equal(ready, want) {
			return fmt.Errorf("ready %v", ready)
		}
		return nil
	})
}

// TestHAProxyErrors: hoist haproxy tells an operator what is wrong with
// its HAProxy before it reads any stream: no socket, an unknown backend, a
// backend without servers; and bad flags are usage errors.
func TestHAProxyErrors(t *testing.T) {
	needHoist(t)
	bin := requireHAProxy(t)
	dir := t.TempDir()
	h := startHAProxy(t, bin, dir, "errs", "server-template hoist 2 127.0.0.1:1 disabled weight 100")
	const nats = "nats://127.0.0.1:1" // never reached: HAProxy is checked first
	for _, tc := range []struct {
		name string
		code int
		args []string
		want []string
	}{
		{"no socket", 1, []string{"--socket", filepath.Join(dir, "none.sock"), "--backend", "web=a.b.c"},
			[]string{"no socket at", "stats socket", "level admin"}},
		{"unknown backend", 1, []string{"--socket", h.socket, "--backend", "nope=a.b.c"},
			[]string{`"nope"`, "the backends it has: web"}},
		{"no backend flag", 2, []string{"--socket", h.socket}, []string{"--backend HAPROXY_BACKEND=SCOPE"}},
		{"bad scope", 2, []string{"--socket", h.socket, "--backend", "web=Nope"}, []string{`--backend "web=Nope"`}},
		{"mapped twice", 2, []string{"--socket", h.socket, "--backend", "web=a.b.c", "--backend", "web=a.b.d"}, []string{"mapped twice"}},
	} {
		r := runHoist(t, nats, append([]string{"haproxy"}, tc.args...)...)
		if r.code != tc.code {
			t.Errorf("%s: want exit %d, got %s", tc.name, tc.code, r)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr should say %q:\n%s", tc.name, w, r.stderr)
			}
		}
	}
}
