package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// fleet is an agent (process runtime) serving one scope and a balancer in
// front of it, both host processes of hoistBin.
type fleet struct {
	scope, host string
	node        string
	agent       *proc
	balancer    string // http://127.0.0.1:port
}

// startFleet starts the agent and balancer with env, deploys replicas of
// the demo backend to scope and returns once the balancer serves them.
func startFleet(t *testing.T, env []string, scope string, replicas int) *fleet {
	t.Helper()
	demo := imagetest.DemoBinary(t)
	f := &fleet{scope: scope, host: "chaos-" + randomID() + ".localhost", node: "node-" + randomID()}
	dir := t.TempDir()
	nodeToml := filepath.Join(dir, "node.toml")
	conf := fmt.Sprintf("version = \"1\"\nname = %q\nscopes = [%q]\nadvertise = \"127.0.0.1\"\n", f.node, scope)
	if err := os.WriteFile(nodeToml, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	f.agent = startProc(t, "agent "+f.node, env, "agent", "--node-config", nodeToml, "--data", data,
		"--runtime", "process", "--agent-check", "127.0.0.1:0", "--heartbeat", "1s")
	// The replicas are the agent's children in their own process groups:
	// they outlive it on purpose, so the test stops them itself.
	t.Cleanup(func() { killReplicas(t, filepath.Join(data, "process"), demo) })
	bal := startProc(t, "balancer", env, "balancer", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	l := bal.waitJSONLog(t, 60*time.Second, "balancer listening", func(l map[string]any) bool { return l["on"] == "http" })
	f.balancer = "http://" + l["addr"].(string)

	mustHoist(t, env, 0, "deploy", scope, "--replicas", strconv.Itoa(replicas), "--port", "8080", "--health-path", "/up",
		"--host", f.host, "--command", strconv.Quote(demo))
	mustHoist(t, env, 0, "wait", scope, "--timeout", "90s")
	natstest.Eventually(t, 60*time.Second, func() error {
		return f.get(context.Background(), &http.Client{Timeout: 2 * time.Second})
	})
	return f
}

// get is one request through the balancer to the scope's host.
func (f *fleet) get(ctx context.Context, client *http.Client) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.balancer+"/", nil)
	req.Host = f.host
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// httpLoad sends requests through the balancer at a bounded rate and
// counts the failures in each phase of the test.
type httpLoad struct {
	phase  atomic.Pointer[string]
	mu     sync.Mutex
	sent   map[string]int
	failed map[string]int
	sample map[string]string // one failure per phase
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startHTTPLoad sends rate requests a second (at most) to f, from four
// workers, until the test ends or stop is called.
func startHTTPLoad(t *testing.T, f *fleet, rate int, phase string) *httpLoad {
	ctx, cancel := context.WithCancel(context.Background())
	h := &httpLoad{sent: map[string]int{}, failed: map[string]int{}, sample: map[string]string{}, cancel: cancel}
	h.setPhase(phase)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	jobs := make(chan struct{})
	h.wg.Go(func() {
		defer tick.Stop()
		defer close(jobs)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default: // every worker busy: a slow answer, counted when it ends
				}
			}
		}
	})
	for range 4 {
		h.wg.Go(func() {
			for range jobs {
				p := *h.phase.Load()
				err := f.get(ctx, client)
				if ctx.Err() != nil {
					return
				}
				h.mu.Lock()
				h.sent[p]++
				if err != nil {
					h.failed[p]++
					if h.sample[p] == "" {
						h.sample[p] = err.Error()
					}
				}
				h.mu.Unlock()
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

func (h *httpLoad) setPhase(p string) { h.phase.Store(&p) }

func (h *httpLoad) stop() {
	h.cancel()
	h.wg.Wait()
}

// counts returns the requests sent and failed in phase p.
func (h *httpLoad) counts(p string) (sent, failed int, sample string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent[p], h.failed[p], h.sample[p]
}

// killReplicas kills the process-runtime replicas recorded under dir that
// still run bin (a reused PID is left alone).
func killReplicas(t *testing.T, dir, bin string) {
	for _, r := range liveReplicas(dir, bin) {
		t.Logf("stopping replica process %d", r.PID)
		killGroup(r.PID)
	}
}
