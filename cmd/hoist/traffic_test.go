package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

func TestParseMaintenanceArgs(t *testing.T) {
	tests := []struct {
		args    []string
		message bool
		on      bool
		err     string
	}{
		{args: []string{"acme.prod.web", "on"}, on: true},
		{args: []string{"acme.prod.web", "on"}, message: true, on: true},
		{args: []string{"acme.prod.web", "OFF"}},
		{args: []string{"acme.prod.web", "off"}, message: true, err: "--message goes with 'on'"},
		{args: []string{"acme.prod.web", "yes"}, err: `"yes": want on or off`},
		{args: []string{"acme.prod.web", ""}, err: "want on or off"},
		{args: []string{"Acme.prod.web", "on"}, err: `client "Acme"`},
		{args: []string{"acme.prod.web"}, err: "usage: hoist maintenance SCOPE on|off"},
		{args: []string{"acme.prod.web", "on", "now"}, err: "usage"},
	}
	for _, tt := range tests {
		scope, on, err := parseMaintenanceArgs(tt.args, tt.message)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || exitCode(err) != exitUsage):
			t.Errorf("%q: err = %v (exit %d), want a usage error with %q", tt.args, err, exitCode(err), tt.err)
		case tt.err == "" && (on != tt.on || scope.String() != tt.args[0]):
			t.Errorf("%q: %s on=%v, want on=%v", tt.args, scope, on, tt.on)
		}
	}
}

func TestParsePauseMax(t *testing.T) {
	for s, want := range map[string]time.Duration{"30s": 30 * time.Second, " 1h ": time.Hour, "100ms": 100 * time.Millisecond, "1m30s": 90 * time.Second} {
		if got, err := parsePauseMax(s); err != nil || got != want {
			t.Errorf("parsePauseMax(%q) = %s, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range []string{"", "30", "99ms", "61m", "-1s", "forever", "1e9h", "NaN"} {
		if _, err := parsePauseMax(s); err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "want a duration from 100ms to 1h0m0s") {
			t.Errorf("parsePauseMax(%q) = %v, want a usage error", s, err)
		}
	}
}

// FuzzParsePauseMax: any --max is a pause's max within its limits, or a
// usage error; never a panic.
func FuzzParsePauseMax(f *testing.F) {
	for _, s := range []string{"30s", "100ms", "1h", "", "1h0m0.000000001s", "-0s", "9223372036s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parsePauseMax(s)
		if err != nil {
			if exitCode(err) != exitUsage {
				t.Fatalf("%q: %v is not a usage error", s, err)
			}
			return
		}
		if d < 100*time.Millisecond || d > time.Hour {
			t.Fatalf("%q parsed to %s, outside 100ms-1h", s, d)
		}
	})
}

// FuzzParseMaintenanceArgs: any SCOPE on|off is a scope and a switch, or a
// usage error.
func FuzzParseMaintenanceArgs(f *testing.F) {
	f.Add("acme.prod.web", "on", false)
	f.Add("acme.prod.web", "off", true)
	f.Add("a..b", "On", false)
	f.Fuzz(func(t *testing.T, scope, sw string, message bool) {
		sc, on, err := parseMaintenanceArgs([]string{scope, sw}, message)
		if err != nil {
			if exitCode(err) != exitUsage {
				t.Fatalf("%q %q: %v is not a usage error", scope, sw, err)
			}
			return
		}
		if sc.String() != scope || on != strings.EqualFold(sw, "on") || (!on && !strings.EqualFold(sw, "off")) {
			t.Fatalf("%q %q: %s on=%v", scope, sw, sc, on)
		}
	})
}

// TestTrafficCommands: pause, resume and maintenance publish, refuse what
// the fold would skip (exit 2, nothing published), and show in log and
// status.
func TestTrafficCommands(t *testing.T) {
	srv := natstest.Start(t)
	t.Setenv("HOIST_NATS_URL", srv.URL())
	t.Setenv("HOIST_ACTOR", "alice@laptop")
	const s = "acme.prod.web"

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pause", s}, "has never been deployed"},
		{[]string{"maintenance", s, "on"}, "has never been deployed"},
	} {
		if r := mustRun(t, 2, hoist(c.args...)); !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %v: %s, want %q", c.args, r, c.want)
		}
	}
	mustRun(t, 0, hoist("deploy", s, "--image", "web:1"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"resume", s}, "acme.prod.web is not paused: nothing to resume"},
		{[]string{"maintenance", s, "off"}, "has no maintenance page up"},
		{[]string{"pause", s, "--max", "10ms"}, `--max "10ms": want a duration from 100ms to 1h0m0s`},
		{[]string{"pause", s, "--reason", "a\nb"}, "reason"},
		{[]string{"maintenance", s, "sideways"}, `"sideways": want on or off`},
		{[]string{"maintenance", s, "on", "--message", "\x1b[2J"}, "control character"},
		{[]string{"maintenance", s, "off", "--message", "x"}, "--message goes with 'on'"},
	} {
		if r := mustRun(t, 2, hoist(c.args...)); !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist %v: %s, want %q", c.args, r, c.want)
		}
	}
	if h := head(t, srv.URL(), s); h != 1 {
		t.Fatalf("head = %d after refusals, want 1", h)
	}

	steps := []struct {
		args []string
		want string
	}{
		{[]string{"pause", s, "--max", "20s", "--reason", "db migration"}, `acme.prod.web: revision 2 (paused (each request held at most 20s): "db migration")`},
		{[]string{"maintenance", s, "on", "--message", "Back at 10:00 <b>UTC</b>"}, `acme.prod.web: revision 3 (maintenance page on: "Back at 10:00 <b>UTC</b>")`},
	}
	for _, st := range steps {
		if r := mustRun(t, 0, hoist(st.args...)); !strings.Contains(r.stdout, st.want) {
			t.Errorf("hoist %v: %s, want %q", st.args, r, st.want)
		}
	}
	r := mustRun(t, 0, hoist("status", s))
	for _, want := range []string{
		"acme.prod.web is PAUSED since ", " by alice@laptop (\"db migration\"): balancers hold new requests, each at most 20s",
		"acme.prod.web is in MAINTENANCE since ", `: "Back at 10:00 <b>UTC</b>"`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status: want %q in\n%s", want, r.stdout)
		}
	}
	mustRun(t, 0, hoist("resume", s, "--expect-revision", "3"))
	mustRun(t, 3, hoist("maintenance", s, "off", "--expect-revision", "3"))
	mustRun(t, 0, hoist("maintenance", s, "off"))
	if r := mustRun(t, 0, hoist("status", s)); strings.Contains(r.stdout, "PAUSED") || strings.Contains(r.stdout, "MAINTENANCE") {
		t.Errorf("status after resume and off:\n%s", r.stdout)
	}
	r = mustRun(t, 0, hoist("log", s))
	for _, want := range []string{"resumed: held requests released", "maintenance page off"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("log: want %q in\n%s", want, r.stdout)
		}
	}
}

// TestPauseEndToEnd runs it all as a user would: an agent (process
// runtime) runs the demo, 'hoist balancer' serves it, and 'hoist pause',
// 'resume' and 'maintenance' change what the balancer does.
func TestPauseEndToEnd(t *testing.T) {
	srv := natstest.Start(t)
	t.Setenv("HOIST_NATS_URL", srv.URL())
	node, dir := agtNode(), t.TempDir()
	nodeToml := filepath.Join(dir, "node.toml")
	agtWriteFile(t, nodeToml, fmt.Sprintf("version = \"1\"\nname = %q\nclient = \"acme\"\nenvironment = \"prod\"\nsolution = \"web\"\nadvertise = \"127.0.0.1\"\n", node))
	agtWriteFile(t, filepath.Join(dir, "config.toml"), "reference_file_path = \"state/reference.json\"\n")
	t.Cleanup(func() {
		p, err := process.New(process.Config{Node: node, DataDir: filepath.Join(dir, "data", "process")})
		if err != nil {
			t.Error(err)
			return
		}
		reps, _ := p.List(context.Background())
		for _, r := range reps {
			_ = p.Stop(context.Background(), r.ID, time.Second)
			_ = p.Remove(context.Background(), r.ID)
		}
	})
	startAgentCmd(t, "--node-config", nodeToml, "--runtime", "process", "--data", filepath.Join(dir, "data"),
		"--agent-check", "", "--heartbeat", "200ms", "--resync", "1s")
	const s = "acme.prod.web"
	mustRun(t, 0, hoist("deploy", s, "--command", imagetest.DemoBinary(t), "--port", "8080", "--health-path", "/up", "--host", "web.localhost"))
	mustRun(t, 0, hoist("wait", s, "--timeout", "1m"))

	listen, metrics := balancerTestAddr(t), balancerTestAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs natstest.SyncBuffer
	go func() {
		app := newApp(io.Discard, &logs)
		done <- app.RunContext(ctx, reorderArgs(app, []string{"hoist", "balancer", "--listen", listen, "--metrics", metrics, "--pause-queue", "50"}))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("balancer exited with %v\n%s", err, logs.String())
		}
	}()
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(accept string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/", nil)
		req.Host = "web.localhost"
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(body)
	}
	metric := func(line string) error {
		res, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(b), line+"\n") {
			return fmt.Errorf("no %q in the metrics", line)
		}
		return nil
	}
	natstest.Eventually(t, 15*time.Second, func() error {
		if code, body := get(""); code != 200 {
			return fmt.Errorf("%d %q\n%s", code, body, logs.String())
		}
		return nil
	})

	mustRun(t, 0, hoist("pause", s, "--max", "1m", "--reason", "e2e"))
	natstest.Eventually(t, 15*time.Second, func() error { return metric(`hoist_balancer_paused{scope="acme.prod.web"} 1`) })
	const n = 40
	codes := make(chan int, n)
	for range n {
		go func() { code, _ := get(""); codes <- code }()
	}
	natstest.Eventually(t, 15*time.Second, func() error {
		return metric(fmt.Sprintf(`hoist_balancer_held_requests{scope="acme.prod.web"} %d`, n))
	})
	mustRun(t, 0, hoist("resume", s))
	for range n {
		if code := <-codes; code != 200 {
			t.Fatalf("a held request got %d after the resume, want 200", code)
		}
	}

	mustRun(t, 0, hoist("maintenance", s, "on", "--message", "Back <soon>"))
	natstest.Eventually(t, 15*time.Second, func() error {
		if code, body := get("text/html"); code != 503 || !strings.Contains(body, "Back &lt;soon&gt;") {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	mustRun(t, 0, hoist("maintenance", s, "off"))
	natstest.Eventually(t, 15*time.Second, func() error {
		if code, body := get(""); code != 200 {
			return fmt.Errorf("%d %q after maintenance off", code, body)
		}
		return nil
	})
}
