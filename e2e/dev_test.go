package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/hoist-dev/hoist/internal/imagetest"
)

const (
	devScope = "demo.dev.web"
	devHost  = "web.localhost"
	devNode  = "dev" // hoist dev's agent
)

// TestDev runs `hoist dev` as a user would: it comes up with the demo
// scope, serves it through its balancer, follows `hoist scale`, stops on
// Ctrl-C without leaving replica processes behind, and a second start on
// the same data directory publishes nothing new.
func TestDev(t *testing.T) {
	needHoist(t)
	t.Run("process", func(t *testing.T) { runDev(t, "process", nil) })
	t.Run("docker", func(t *testing.T) {
		docker := imagetest.RequireDocker(t)
		// hoist dev's node is always "dev": never touch a developer's own.
		if n, err := countContainers(docker, devNode); err != nil || n > 0 {
			t.Skipf("SKIPPING: %d containers labelled hoist.node=%s exist (a hoist dev running here?) (%v)", n, devNode, err)
		}
		t.Cleanup(func() {
			if n, err := removeContainers(docker, devNode); err != nil || n > 0 {
				t.Logf("removed %d leftover hoist dev container(s) (%v)", n, err)
			}
		})
		runDev(t, "docker", docker)
	})
}

// devProc is one `hoist dev` run and the addresses its banner printed.
type devProc struct {
	*proc
	natsURL, balancer string
}

func startDev(t *testing.T, runtime, dataDir string, extra ...string) *devProc {
	t.Helper()
	args := append([]string{"dev", "--data", dataDir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--agent-check", "", "--runtime", runtime}, extra...)
	d := &devProc{proc: startProc(t, "hoist dev", nil, args...)}
	d.waitLine(t, 3*time.Minute, `the "hoist dev is up" banner`, func(out, _ string) (string, bool) {
		if !strings.Contains(out, "hoist dev is up") {
			return "", false
		}
		for line := range strings.Lines(out) {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "NATS":
				d.natsURL = f[1]
			case len(f) >= 2 && f[0] == "balancer":
				d.balancer = f[1]
			}
		}
		return "", d.natsURL != "" && d.balancer != ""
	})
	return d
}

func runDev(t *testing.T, runtime string, docker *client.Client) {
	dataDir := t.TempDir()
	demoBin := filepath.Join(dataDir, "bin", "hoist") // what the process runtime's replicas run
	d := startDev(t, runtime, dataDir)

	pids := map[int]bool{}
	answered := func(want int) map[string]int {
		t.Helper()
		who := map[string]int{}
		eventually(t, 60*time.Second, fmt.Sprintf("%d demo replicas answer through the balancer", want), func() error {
			a, err := devGet(d.balancer)
			if err != nil {
				return err
			}
			// Node is empty when hoist dev reuses a demo image made before
			// replicas were told their node (it keeps hoist-demo:dev).
			if (a.Node != devNode && a.Node != "") || !strings.HasPrefix(a.Replica, devScope+"#") {
				return fmt.Errorf("unexpected answer %+v", a)
			}
			who[a.who()]++
			pids[a.PID] = true
			if len(who) < want {
				return fmt.Errorf("answered so far: %v", who)
			}
			return nil
		})
		return who
	}
	first := answered(3)
	t.Logf("3 replicas answered: %v", first)

	mustHoist(t, d.natsURL, 0, "scale", devScope, "5")
	mustHoist(t, d.natsURL, 0, "wait", devScope, "--timeout", "90s")
	after := answered(5)
	if len(after) != 5 {
		t.Errorf("after scaling to 5, %d replicas answered: %v", len(after), after)
	}
	logBefore := mustHoist(t, d.natsURL, 0, "log", devScope, "--json").stdout
	if runtime == "process" {
		for _, pid := range replicaPIDs(filepath.Join(dataDir, "agent", "process"), demoBin) {
			pids[pid] = true
		}
	}

	// Ctrl-C: hoist dev exits cleanly, and no replica process it started
	// is left (Docker replicas stay for the next start to adopt).
	if err := d.signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := d.waitExit(60 * time.Second); err != nil {
		t.Fatalf("hoist dev after SIGINT: %v\n%s", err, tail(d.log.String(), 40))
	}
	if runtime == "process" {
		if len(pids) < 5 {
			t.Errorf("saw %d replica PIDs, want at least 5: %v", len(pids), pids)
		}
		for pid := range pids {
			if runs(pid, demoBin) {
				t.Errorf("replica process %d outlived hoist dev", pid)
			}
		}
	} else if n, err := countContainers(docker, devNode); err != nil || n != 5 {
		t.Errorf("after Ctrl-C without --clean, %d demo containers remain (want 5 kept for the next start) (%v)", n, err)
	}

	// A second start on the same data publishes nothing and serves again.
	var extra []string
	if runtime == "docker" {
		extra = append(extra, "--clean")
	}
	d = startDev(t, runtime, dataDir, extra...)
	answered(5)
	if logAfter := mustHoist(t, d.natsURL, 0, "log", devScope, "--json").stdout; logAfter != logBefore {
		t.Errorf("a second start changed the log:\nbefore: %s\nafter:  %s", logBefore, logAfter)
	}
	if err := d.signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := d.waitExit(60 * time.Second); err != nil {
		t.Fatalf("hoist dev after SIGINT: %v", err)
	}
	if runtime == "docker" {
		if n, err := countContainers(docker, devNode); err != nil || n != 0 {
			t.Errorf("after Ctrl-C with --clean, %d demo containers remain (%v)", n, err)
		}
	} else if left := replicaPIDs(filepath.Join(dataDir, "agent", "process"), demoBin); len(left) > 0 {
		t.Errorf("replica processes %v outlived the second hoist dev", left)
	}
}

// devGet asks hoist dev's balancer for the demo once.
func devGet(balancer string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lg := &loadGen{url: balancer + "/", host: devHost, client: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}
	_, a, err := lg.get(ctx)
	return a, err
}
