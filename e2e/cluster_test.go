package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/projector"
)

// cluster is one run's hoist server, two agents and a balancer, each a
// child process.
type cluster struct {
	runtime    string // docker or process
	natsURL    string
	scope      string
	nodes      [2]string // node-a, node-b (named uniquely per run)
	agentDirs  [2]string
	agents     [2]*proc
	balancer   string // http://addr
	metrics    string // http://addr
	docker     *client.Client
	replicaBin string // the process runtime's replica binary, for cleanup
}

// runID names this run's scope and nodes, so runs never share containers
// on one Docker engine.
func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "r" + hex.EncodeToString(b)
}

// startCluster starts hoist server, two agents serving one fresh scope, and
// a balancer, and returns once both agents report and the balancer serves.
func startCluster(t *testing.T, runtime string, docker *client.Client, replicaBin string) *cluster {
	t.Helper()
	id := runID()
	c := &cluster{runtime: runtime, scope: "e2e." + id + ".web", nodes: [2]string{"a-" + id, "b-" + id},
		docker: docker, replicaBin: replicaBin}
	dir := t.TempDir()

	srv := startProc(t, "hoist server", nil, "server", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "nats"), "--name", "e2e-"+id)
	c.natsURL = srv.waitLine(t, 60*time.Second, `"ready: URL"`, func(out, _ string) (string, bool) {
		for line := range strings.Lines(out) {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "ready: "); ok {
				return u, true
			}
		}
		return "", false
	})
	env := []string{"HOIST_NATS_URL=" + c.natsURL, "HOIST_LOG_FORMAT=json"}

	// Cleanups run last-in first-out: these run after the agents stopped.
	t.Cleanup(func() { c.removeLeftovers(t) })
	for i, node := range c.nodes {
		c.agentDirs[i] = filepath.Join(dir, node)
		if err := os.MkdirAll(c.agentDirs[i], 0o755); err != nil {
			t.Fatal(err)
		}
		nodeToml := filepath.Join(c.agentDirs[i], "node.toml")
		conf := fmt.Sprintf("version = \"1\"\nname = %q\nscopes = [%q]\nadvertise = \"127.0.0.1\"\n", node, c.scope)
		if err := os.WriteFile(nodeToml, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		c.agents[i] = startProc(t, "agent "+node, env, "agent", "--node-config", nodeToml, "--data", filepath.Join(c.agentDirs[i], "data"),
			"--runtime", runtime, "--agent-check", "127.0.0.1:0", "--heartbeat", "1s")
	}

	bal := startProc(t, "hoist balancer", env, "balancer", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	addrs := map[string]string{}
	bal.waitLine(t, 60*time.Second, "both listeners", func(_, log string) (string, bool) {
		for line := range strings.Lines(log) {
			var l struct{ Msg, On, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "balancer listening" {
				addrs[l.On] = l.Addr
			}
		}
		return "", addrs["http"] != "" && addrs["metrics"] != ""
	})
	c.balancer, c.metrics = "http://"+addrs["http"], "http://"+addrs["metrics"]

	eventually(t, 60*time.Second, "both agents report", func() error {
		views, err := c.status(t)
		if err != nil {
			return err
		}
		for _, n := range c.nodes {
			if !slices.ContainsFunc(views, func(v projector.NodeView) bool { return v.Node == n && v.Alive }) {
				return fmt.Errorf("%s has not reported: %+v", n, views)
			}
		}
		return nil
	})
	return c
}

// hoist runs the CLI against this cluster and wants exit code want.
func (c *cluster) hoist(t *testing.T, want int, args ...string) result {
	t.Helper()
	return mustHoist(t, c.natsURL, want, args...)
}

// status is `hoist status --json`, all scopes.
func (c *cluster) status(t *testing.T) ([]projector.NodeView, error) {
	t.Helper()
	r := runHoist(t, c.natsURL, "status", "--json")
	if r.code != 0 {
		return nil, fmt.Errorf("hoist status: %s", r)
	}
	return decodeJSON[[]projector.NodeView](r.stdout)
}

// table is the balancer's /debug/table pool of the scope (nil if absent).
func (c *cluster) table() (*balancer.ScopeView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.metrics+"/debug/table", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var tv balancer.TableView
	if err := json.NewDecoder(res.Body).Decode(&tv); err != nil {
		return nil, fmt.Errorf("decode /debug/table: %w", err)
	}
	for _, s := range tv.Scopes {
		if s.Scope == c.scope {
			return &s, nil
		}
	}
	return nil, nil
}

// removeLeftovers removes what this run's agents may have left behind when
// the test failed half-way: containers labelled with this run's node
// names, and replica processes recorded in the agents' data directories.
func (c *cluster) removeLeftovers(t *testing.T) {
	if c.docker != nil {
		n, err := removeContainers(c.docker, c.nodes[:]...)
		if err != nil {
			t.Errorf("remove containers: %v", err)
		}
		if n > 0 {
			t.Logf("removed %d leftover container(s)", n)
		}
	}
	for _, d := range c.agentDirs {
		for _, pid := range replicaPIDs(filepath.Join(d, "data", "process"), c.replicaBin) {
			t.Logf("killing leftover replica process %d", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL) // its own process group
		}
	}
}

// removeContainers force-removes every container labelled hoist.node=N for
// the given nodes.
func removeContainers(docker *client.Client, nodes ...string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	removed := 0
	for _, n := range nodes {
		list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "hoist.node="+n))})
		if err != nil {
			return removed, err
		}
		for _, ct := range list {
			if err := docker.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true}); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// countContainers counts the containers labelled hoist.node=node.
func countContainers(docker *client.Client, node string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "hoist.node="+node))})
	return len(list), err
}

// replicaPIDs reads the process runtime's replica records under dir and
// returns the PIDs that still run bin (a PID reused by something else is
// left alone).
func replicaPIDs(dir, bin string) []int {
	paths, _ := filepath.Glob(filepath.Join(dir, "replicas", "*.json"))
	var pids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rec struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(b, &rec) != nil || rec.PID <= 0 {
			continue
		}
		if runs(rec.PID, bin) {
			pids = append(pids, rec.PID)
		}
	}
	return pids
}

// runs reports whether pid is a live (not zombie) process whose command
// line starts with bin.
func runs(pid int, bin string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return bin == "" || argv0 == bin
}
