package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// load sends requests through a balancer without pause and counts the
// answers by the message of the replica that gave them.
type load struct {
	url, host string
	stop      chan struct{}
	wg        sync.WaitGroup
	sent      atomic.Int64
	mu        sync.Mutex
	by        map[string]int
	failures  []string
}

func startLoad(t *testing.T, url, host string, workers int) *load {
	l := &load{url: url, host: host, stop: make(chan struct{}), by: map[string]int{}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(client)
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) one(client *http.Client) {
	req, _ := http.NewRequest(http.MethodGet, l.url+"/", nil)
	req.Host = l.host
	l.sent.Add(1)
	res, err := client.Do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures = append(l.failures, err.Error())
		return
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		l.failures = append(l.failures, fmt.Sprintf("%d %s", res.StatusCode, body))
		return
	}
	for _, m := range []string{"one", "two", "three"} {
		if strings.Contains(string(body), `"message":"`+m+`"`) {
			l.by[m]++
		}
	}
}

// runBalancer runs a balancer of h's server on a free port until the test
// ends, and waits until its first table is in use.
func runBalancer(t *testing.T, h *harness, mutate func(*balancer.Config)) *balancer.Balancer {
	t.Helper()
	cfg := balancer.DefaultConfig()
	cfg.Listen, cfg.TLSListen, cfg.ShutdownTimeout = "127.0.0.1:0", "", 5*time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	bal, err := balancer.New(cfg, h.nats.Store(t), h.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := bal.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- bal.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runErr
	})
	if err := bal.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return bal
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// reset returns the answers since the last reset and starts counting anew.
func (l *load) reset() (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	by, f := l.by, l.failures
	l.by, l.failures = map[string]int{}, nil
	return by, f
}

// A canary runs beside the stable replicas; a promotion rolls the stable
// replicas to its spec and then stops the canary's; an abort stops the
// canary's. Through a real balancer under load, no request fails.
func TestCanaryPromoteAndAbortUnderLoad(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	opts := h.options(rt)
	opts.Deploy.DrainDelay = 200 * time.Millisecond // balancers act on a withdrawal before the stop
	a := h.open(opts)
	spec := func(msg string) events.Spec {
		s := demoSpec(t, 2, map[string]string{"DEMO_MESSAGE": msg})
		s.Hosts = []string{"web.example.com"}
		return s
	}
	rev := h.append(&events.Deployed{Spec: spec("one")})
	waitConverged(t, a, scopeWeb, rev, 2)

	bal := runBalancer(t, h, nil)
	l := startLoad(t, "http://"+bal.Addr("http").String(), "web.example.com", 4)
	// seen waits until the load has had answers of each of msgs, and of
	// no other, since the last reset.
	seen := func(step string, msgs ...string) {
		t.Helper()
		natstest.Eventually(t, 30*time.Second, func() error {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, m := range msgs {
				if l.by[m] == 0 {
					return fmt.Errorf("%s: no answer of %q yet: %v", step, m, l.by)
				}
			}
			return nil
		})
	}
	seen("before", "one")

	// Start: one canary replica beside the two stable ones, half the
	// requests.
	rev = h.append(&events.CanaryStarted{Spec: spec("two"), Share: 50, Replicas: 1})
	st := waitConverged(t, a, scopeWeb, rev, 3)
	canaries := 0
	for _, r := range st.Replicas {
		if r.Canary {
			canaries++
		}
	}
	if canaries != 1 {
		t.Fatalf("replicas %+v, want one of the canary", st.Replicas)
	}
	l.reset()
	seen("canary at 50%", "one", "two")
	by, failed := l.reset()
	t.Logf("canary at 50%%: %v", by)
	if len(failed) > 0 {
		t.Fatalf("%d requests failed while the canary started: %v", len(failed), failed[:min(5, len(failed))])
	}

	// A shift reaches the balancer with no reconcile.
	starts := rt.starts.Load()
	h.append(&events.CanaryShifted{Share: 0})
	natstest.Eventually(t, 10*time.Second, func() error {
		if p := bal.Table().Pool(scopeWeb); p == nil || p.Traffic == nil || p.Traffic.Canary == nil || p.Traffic.Canary.Share != 0 {
			return fmt.Errorf("pool %+v", p)
		}
		return nil
	})
	l.reset()
	natstest.Eventually(t, 10*time.Second, func() error {
		if by, _ := l.reset(); by["one"] < 50 || by["two"] > 0 {
			return fmt.Errorf("at 0%%: %v", by)
		}
		return nil
	})
	if n := rt.starts.Load() - starts; n != 0 {
		t.Errorf("a shift started %d replicas", n)
	}
	h.append(&events.CanaryShifted{Share: 50})
	seen("back at 50%", "one", "two")

	// Promote: the stable replicas roll to "two", then the canary's stop.
	l.reset()
	rev = h.append(&events.CanaryPromoted{})
	st = waitConverged(t, a, scopeWeb, rev, 2)
	for _, r := range st.Replicas {
		if r.Canary {
			t.Fatalf("a canary replica is left after the promotion: %+v", st.Replicas)
		}
		if _, body, err := get("http://" + r.Backend + "/"); err != nil || !strings.Contains(body, "two") {
			t.Errorf("stable replica %d after the promotion: %q %v", r.Index, body, err)
		}
	}
	by, failed = l.reset()
	t.Logf("during the promotion: %v, %d failed", by, len(failed))
	if len(failed) > 0 {
		t.Fatalf("%d requests failed during the promotion: %v", len(failed), failed[:min(5, len(failed))])
	}
	seen("promoted", "two")

	// Abort: a new canary's replica drains and stops.
	rev = h.append(&events.CanaryStarted{Spec: spec("three"), Share: 50, Replicas: 1})
	waitConverged(t, a, scopeWeb, rev, 3)
	l.reset()
	seen("second canary", "two", "three")
	l.reset()
	rev = h.append(&events.CanaryAborted{Reason: "test"})
	waitConverged(t, a, scopeWeb, rev, 2)
	by, failed = l.reset()
	t.Logf("during the abort: %v, %d failed", by, len(failed))
	if len(failed) > 0 {
		t.Fatalf("%d requests failed during the abort: %v", len(failed), failed[:min(5, len(failed))])
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if by, _ := l.reset(); by["three"] > 0 || by["two"] < 50 {
			return fmt.Errorf("after the abort: %v", by)
		}
		return nil
	})
	l.end()
	t.Logf("%d requests in all", l.sent.Load())
}
