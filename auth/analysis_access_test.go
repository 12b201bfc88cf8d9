package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// The canary analysis under auth, through hoist's own store: a balancer
// publishes statistics under its own name only; an agent reads its
// scopes' statistics and holds their leases, and no other scope's.
func TestCanaryAnalysisAccess(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	url := srv.ClientURL()
	open := func(creds string) *store.Store {
		t.Helper()
		nc, err := store.Connect(store.ConnectOptions{URL: url, CredsFile: creds})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		st, err := store.Open(ctx, nc, store.Options{LeaseTTL: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	open(filepath.Join(dir, adminCreds)) // sets up the streams and the bucket
	web, staging := events.MustParseScope("acme.prod.web"), events.MustParseScope("acme.staging.web")
	lb := open(issue(t, dir, Role{Kind: KindBalancer, Name: "lb-1"}))
	agent := open(issue(t, dir, Role{Kind: KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.web"}}))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	stats := func(name string) *events.RequestStats {
		now := time.Now().UTC()
		side := events.SideStats{Latency: make([]uint64, events.LatencyBuckets)}
		return &events.RequestStats{Balancer: name, Boot: "b", Time: now, Since: now, CanaryID: 2, Stable: side, Canary: side}
	}
	if err := lb.PublishRequestStats(ctx, web, stats("lb-1")); err != nil {
		t.Fatalf("a balancer's own statistics: %v", err)
	}
	if err := lb.PublishRequestStats(ctx, web, stats("lb-2")); !errors.Is(err, store.ErrPermission) {
		t.Errorf("statistics under another balancer's name: %v, want a permission error", err)
	}
	if err := agent.PublishRequestStats(ctx, web, stats("node-1")); !errors.Is(err, store.ErrPermission) {
		t.Errorf("an agent's statistics: %v, want a permission error", err)
	}

	got, err := agent.RequestStats(ctx, web)
	if err != nil || len(got) != 1 || got[0].Balancer != "lb-1" {
		t.Fatalf("the agent reads its scope's statistics: %v, %v", got, err)
	}
	if _, err := agent.RequestStats(ctx, staging); !errors.Is(err, store.ErrPermission) {
		t.Errorf("another scope's statistics: %v, want a permission error", err)
	}

	leases, err := agent.Leases(ctx)
	if err != nil {
		t.Fatalf("the agent opens the leases bucket: %v", err)
	}
	if leases.TTL() != 3*time.Second {
		t.Errorf("lease TTL %s, want the bucket's 3s", leases.TTL())
	}
	key := store.LeaseKey(web)
	rev, err := leases.Take(ctx, key, []byte("node-1 2"))
	if err != nil {
		t.Fatalf("take its scope's lease: %v", err)
	}
	if _, err := leases.Take(ctx, key, []byte("node-1 2")); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("take a held lease: %v, want ErrLeaseHeld", err)
	}
	if rev, err = leases.Renew(ctx, key, []byte("node-1 2"), rev); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if _, err := leases.Renew(ctx, key, []byte("node-1 2"), rev-1); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("renew on a stale revision: %v, want ErrLeaseHeld", err)
	}
	if v, ok, err := leases.Holder(ctx, key); err != nil || !ok || string(v) != "node-1 2" {
		t.Errorf("holder: %q %v %v", v, ok, err)
	}
	if err := leases.Release(ctx, key, rev); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := leases.Take(ctx, key, []byte("node-1 2")); err != nil {
		t.Errorf("take after the release: %v", err)
	}
	if _, err := leases.Take(ctx, store.LeaseKey(staging), []byte("node-1 2")); !errors.Is(err, store.ErrPermission) {
		t.Errorf("the lease of a scope the agent does not serve: %v, want a permission error", err)
	}
}
