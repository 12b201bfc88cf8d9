// Package deploytest holds what the tests of package deploy and of its
// runtimes (deploy/docker, deploy/process) share: node names no other test
// uses, a recording runtime that checks the rolling-update guarantee, and
// probes of the demo app's replicas. It is for tests only.
package deploytest

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

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/internal/demoapp"
)

// Node returns a node name no other test (or test run) uses, so tests
// that share one Docker engine never see each other's replicas.
func Node(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

// Logger logs at debug level to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Recorder wraps a Runtime, records the calls a reconcile makes, and checks
// at every Stop that enough other replicas are healthy: the rolling-update
// guarantee that old replicas stay until new ones serve.
type Recorder struct {
	deploy.Runtime
	t          testing.TB
	healthPath string

	mu         sync.Mutex
	calls      []string
	minHealthy int // at each Stop, other healthy replicas must be at least this
}

// NewRecorder records the calls made to rt; a replica is healthy when
// healthPath answers 200.
func NewRecorder(t testing.TB, rt deploy.Runtime, healthPath string) *Recorder {
	return &Recorder{Runtime: rt, t: t, healthPath: healthPath}
}

func (r *Recorder) Start(ctx context.Context, rs deploy.ReplicaSpec) (deploy.Replica, error) {
	r.record(fmt.Sprintf("start %d", rs.Index))
	return r.Runtime.Start(ctx, rs)
}

func (r *Recorder) Stop(ctx context.Context, id string, timeout time.Duration) error {
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

func (r *Recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

// Take returns the calls recorded since the last take and sets the health
// floor for the next reconcile.
func (r *Recorder) Take(minHealthy int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls, r.minHealthy = nil, minHealthy
	return c
}

func (r *Recorder) healthyOthers(ctx context.Context, id string) int {
	reps, err := r.Runtime.List(ctx)
	if err != nil {
		r.t.Errorf("list: %v", err)
		return 0
	}
	n := 0
	for _, rep := range reps {
		if rep.ID != id && rep.State == deploy.StateRunning && HTTPStatus("127.0.0.1:"+strconv.Itoa(rep.HostPort)+r.healthPath) == http.StatusOK {
			n++
		}
	}
	return n
}

// CountPrefix counts the calls that start with prefix.
func CountPrefix(calls []string, prefix string) int {
	return len(slices.DeleteFunc(slices.Clone(calls), func(c string) bool {
		return len(c) < len(prefix) || c[:len(prefix)] != prefix
	}))
}

var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// HTTPStatus is the status GET http://hostPortPath answers with; 0 when it
// does not answer.
func HTTPStatus(hostPortPath string) int {
	resp, err := probeClient.Get("http://" + hostPortPath)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Identity is what the demo app at backend says it is.
func Identity(t testing.TB, backend string) demoapp.Identity {
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

// Messages returns the DEMO_MESSAGE each backend answers with, and checks
// that every backend names a distinct replica.
func Messages(t testing.TB, backends []string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, b := range backends {
		id := Identity(t, b)
		if seen[id.Replica] {
			t.Errorf("two backends answer as %s", id.Replica)
		}
		seen[id.Replica] = true
		out = append(out, id.Message)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// IDsByIndex maps each replica index to its ID.
func IDsByIndex(reps []deploy.Replica) map[int]string {
	m := map[int]string{}
	for _, r := range reps {
		m[r.Index] = r.ID
	}
	return m
}

// MustReconcile reconciles d and fails the test on an error.
func MustReconcile(t testing.TB, rc *deploy.Reconciler, d deploy.Desired) deploy.Result {
	t.Helper()
	res, err := rc.Reconcile(t.Context(), d)
	if err != nil {
		t.Fatalf("reconcile rev %d: %v", d.Revision, err)
	}
	return res
}
