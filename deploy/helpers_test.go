package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/demoapp"
)

// testNode returns a node name no other test (or test run) uses, so tests
// that share one Docker engine never see each other's replicas.
func testNode(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder wraps a Runtime, records the calls a reconcile makes, and checks
// at every Stop that enough other replicas are healthy: the rolling-update
// guarantee that old replicas stay until new ones serve.
type recorder struct {
	Runtime
	t          testing.TB
	healthPath string

	mu         sync.Mutex
	calls      []string
	minHealthy int // at each Stop, other healthy replicas must be at least this
}

func (r *recorder) Start(ctx context.Context, rs ReplicaSpec) (Replica, error) {
	r.record(fmt.Sprintf("start %d", rs.Index))
	return r.Runtime.Start(ctx, rs)
}

func (r *recorder) Stop(ctx context.Context, id string, timeout time.Duration) error {
	r.mu.Lock()
	want := r.minHealthy
	r.mu.Unlock()
	if want > 0 {
		if got := r.healthyOthers(ctx, id); got < want {
			r.t.Errorf("stopping %s would leave %d healthy replicas, want at least %d", id, got, want)
		}
	}
	r.record("stop " + id)
	return r.Runtime.Stop(ctx, id, timeout)
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

// take returns the calls recorded since the last take and sets the health
// floor for the next reconcile.
func (r *recorder) take(minHealthy int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls, r.minHealthy = nil, minHealthy
	return c
}

func (r *recorder) healthyOthers(ctx context.Context, id string) int {
	reps, err := r.Runtime.List(ctx)
	if err != nil {
		r.t.Errorf("list: %v", err)
		return 0
	}
	n := 0
	for _, rep := range reps {
		if rep.ID != id && rep.State == StateRunning && httpStatus("127.0.0.1:"+strconv.Itoa(rep.HostPort)+r.healthPath) == http.StatusOK {
			n++
		}
	}
	return n
}

func countPrefix(calls []string, prefix string) int {
	return len(slices.DeleteFunc(slices.Clone(calls), func(c string) bool {
		return len(c) < len(prefix) || c[:len(prefix)] != prefix
	}))
}

var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func httpStatus(hostPortPath string) int {
	resp, err := probeClient.Get("http://" + hostPortPath)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func identity(t testing.TB, backend string) demoapp.Identity {
	t.Helper()
	resp, err := probeClient.Get("http://" + backend + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", backend, err)
	}
	defer resp.Body.Close()
	var id demoapp.Identity
	if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
		t.Fatalf("decode identity from %s: %v", backend, err)
	}
	return id
}

// messages returns the DEMO_MESSAGE each backend answers with, and checks
// that every backend names a distinct replica.
func messages(t testing.TB, backends []string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, b := range backends {
		id := identity(t, b)
		if seen[id.Replica] {
			t.Errorf("two backends answer as %s", id.Replica)
		}
		seen[id.Replica] = true
		out = append(out, id.Message)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// idsByIndex maps each replica index to its ID.
func idsByIndex(reps []Replica) map[int]string {
	m := map[int]string{}
	for _, r := range reps {
		m[r.Index] = r.ID
	}
	return m
}

func mustReconcile(t testing.TB, rc *Reconciler, d Desired) Result {
	t.Helper()
	res, err := rc.Reconcile(t.Context(), d)
	if err != nil {
		t.Fatalf("reconcile rev %d: %v", d.Revision, err)
	}
	return res
}
