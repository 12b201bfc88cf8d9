package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// 'hoist server' says ready only when hoist can publish, stops cleanly
// when its context ends (SIGINT/SIGTERM), and a restart on the same data
// directory keeps the history.
func TestServerCommandStopsAndRestarts(t *testing.T) {
	data := t.TempDir()
	p := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", data, "--name", "t1")
	url := p.wait(t, 30*time.Second)
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ready URL %q", url)
	}
	// The streams exist as soon as it is ready: a plain JetStream look-up
	// (not OpenStore, which would create them) finds them.
	nc, err := store.Connect(store.ConnectOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{events.EventsStream, events.ScoresStream, events.BackendsStream, events.ReportsStream} {
		if _, err := js.Stream(t.Context(), name); err != nil {
			t.Errorf("stream %s right after ready: %v", name, err)
		}
	}
	nc.Close()

	mustRun(t, 0, hoistAt(url, "deploy", "acme.prod.web", "--image", "web:1", "--replicas", "3"))
	mustRun(t, 0, hoistAt(url, "scale", "acme.prod.web", "5"))
	before := mustRun(t, 0, hoistAt(url, "log", "acme.prod.web", "--json")).stdout
	if err := p.stop(); err != nil {
		t.Fatalf("server stopped with %v", err)
	}
	if !strings.Contains(p.log.String(), "stopped") {
		t.Errorf("no shutdown in the server's log:\n%s", p.log.String())
	}
	mustRun(t, 1, hoistAt(url, "scopes")) // it is gone

	p2 := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", data, "--name", "t1")
	url2 := p2.wait(t, 30*time.Second)
	after := mustRun(t, 0, hoistAt(url2, "log", "acme.prod.web", "--json")).stdout
	if after != before {
		t.Fatalf("log changed across a restart:\n%s\nvs\n%s", before, after)
	}
}

func TestServerFlagErrors(t *testing.T) {
	data := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--user", "u"}, "--user and --password (or --password-file) go together"},
		{[]string{"--user", "u", "--password", "p", "--token", "t"}, "exclude each other"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-ca", "ca.pem"}, "--tls-ca needs --tls-cert"},
		{[]string{"--listen", "4222"}, `--listen "4222": want host:port`},
		{[]string{"--routes", "nats-route://127.0.0.1:6222"}, "--routes needs --cluster-listen"},
		{[]string{"--routes", "127.0.0.1:6222", "--cluster-listen", "127.0.0.1:0"}, "not a route URL"},
		{[]string{"--replicas", "3"}, "--replicas 3 needs a cluster"},
		{[]string{"--replicas", "7", "--cluster-listen", "127.0.0.1:0"}, "--replicas 7: want 1-5"},
		{[]string{"--data", ""}, "--data is empty"},
		{[]string{"--listen", "0.0.0.0:0"}, "--listen 0.0.0.0:0 accepts clients from other hosts, and nothing authenticates them"},
		{[]string{"--listen", ":0"}, "Use --auth DIR"},
		{[]string{"--listen", "192.0.2.1:0"}, "or --insecure if the network is trusted"},
		{[]string{"--auth", data, "--token", "t"}, "--auth excludes --user and --token"},
		{[]string{"--auth", ""}, "--auth is empty"},
		{[]string{"--cluster-listen", "0.0.0.0:0"}, "--cluster-listen 0.0.0.0:0 accepts routes from other hosts, and nothing authenticates them"},
		{[]string{"--cluster-listen", "192.0.2.1:0", "--routes", "nats-route://192.0.2.2:6222"}, "Use --cluster-tls-cert/--cluster-tls-key/--cluster-tls-ca, or --cluster-user with --cluster-password-file"},
		{[]string{"--cluster-listen", "127.0.0.1:0", "--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem"}, "--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together"},
		{[]string{"--cluster-listen", "127.0.0.1:0", "--cluster-user", "route"}, "--cluster-user and --cluster-password (or --cluster-password-file) go together"},
		{[]string{"--cluster-listen", "127.0.0.1:0", "--cluster-password", "p"}, "--cluster-user and --cluster-password (or --cluster-password-file) go together"},
		{[]string{"--cluster-user", "route", "--cluster-password", "p"}, "they need --cluster-listen and --routes"},
		{[]string{"--cluster-tls-ca", "ca.pem"}, "they need --cluster-listen and --routes"},
		{[]string{"stray"}, "got 1 argument"},
	}
	for _, c := range cases {
		r := hoist(append([]string{"server", "--data", data}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist server %s: want exit 2 and %q, got %s", strings.Join(c.args, " "), c.want, r)
		}
	}
}

// Listening beyond loopback without authentication takes --insecure.
func TestServerOpenWithInsecure(t *testing.T) {
	p := startServerCmd(t, "--listen", "0.0.0.0:0", "--insecure", "--data", t.TempDir(), "--name", "t1")
	if url := p.wait(t, 30*time.Second); !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ready URL %q", url)
	}
	if !strings.Contains(p.log.String(), "auth=none") {
		t.Errorf("the log does not say clients are not authenticated:\n%s", p.log.String())
	}
}

// 'hoist server --auth DIR' trusts the operator of 'hoist auth init': it
// sets up the streams with server.creds, refuses clients without
// credentials, accepts one issued while it runs (whose inbox prefix the
// connection sets from the creds file), and closes it when it is revoked.
func TestServerWithAuth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	mustRun(t, 0, hoist("auth", "init", "--dir", dir))
	p := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--name", "t1", "--auth", dir)
	url := p.wait(t, 30*time.Second)

	if _, err := store.Connect(store.ConnectOptions{URL: url}); err == nil {
		t.Fatal("a client without credentials connected")
	}
	admin, err := store.Connect(store.ConnectOptions{URL: url, CredsFile: filepath.Join(dir, "admin.creds")})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{events.EventsStream, events.ScoresStream, events.BackendsStream, events.ReportsStream} {
		if _, err := js.Stream(t.Context(), name); err != nil {
			t.Errorf("stream %s right after ready: %v", name, err)
		}
	}

	creds := filepath.Join(t.TempDir(), "alice.creds")
	mustRun(t, 0, hoist("auth", "issue", "deployer", "--dir", dir, "--name", "alice", "--scopes", "acme.prod.*", "--out", creds))
	closed := make(chan struct{})
	o := store.ConnectOptions{URL: url, CredsFile: creds, Daemon: true}
	if name, err := o.Identity(); err != nil || name != "alice" {
		t.Fatalf("identity %q %v", name, err)
	}
	nc, err := store.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	// Only _INBOX_alice.> may be subscribed to: a reply arrives only if the
	// connection took that prefix.
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("request as alice: %v", err)
	}
	ajs, _ := jetstream.New(nc)
	if _, err := ajs.Publish(t.Context(), "hoist.score.acme.prod.web.10_0_0_1:8080", []byte(`{}`)); err != nil {
		t.Fatalf("publish as alice: %v", err)
	}

	r := mustRun(t, 0, hoistAt(url, "auth", "revoke", "alice", "--dir", dir))
	if !strings.Contains(r.stdout, "pushed to") {
		t.Errorf("revoke said:\n%s", r)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if nc.IsConnected() {
			return errors.New("alice is still connected")
		}
		return nil
	})
	if c, err := store.Connect(store.ConnectOptions{URL: url, CredsFile: creds}); err == nil {
		c.Close()
		t.Fatal("alice connected after she was revoked")
	}
}

// Three 'hoist server' processes (in-process here) form one JetStream
// cluster with R3 streams; a publish still lands after losing one of them.
func TestServerCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster takes several seconds to elect leaders")
	}
	ports := natstest.FreePorts(t, 3)
	route := func(i int) string { return fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]) }
	procs := make([]*serverProc, 3)
	for i := range procs {
		var routes []string
		for j := range ports {
			if j != i {
				routes = append(routes, route(j))
			}
		}
		procs[i] = startServerCmd(t, "--name", fmt.Sprintf("n%d", i+1), "--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[i]), "--routes", strings.Join(routes, ","))
	}
	urls := make([]string, 3)
	start := time.Now()
	for i, p := range procs {
		urls[i] = p.wait(t, 60*time.Second)
	}
	t.Logf("cluster ready after %s", time.Since(start))
	all := strings.Join(urls, ",")
	start = time.Now()
	mustRun(t, 0, hoistAt(all, "deploy", "acme.prod.web", "--image", "web:1"))
	t.Logf("first deploy took %s", time.Since(start))

	// The config stream is replicated on all three servers.
	nc, err := store.Connect(store.ConnectOptions{URL: all})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("events stream: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	nc.Close()

	// Lose the stream's leader: the other two elect a new one and accept
	// the next publish.
	lost := -1
	for i := range procs {
		if info.Cluster.Leader == fmt.Sprintf("n%d", i+1) {
			lost = i
		}
	}
	if lost < 0 {
		t.Fatalf("leader %q is not one of n1-n3", info.Cluster.Leader)
	}
	start = time.Now()
	if err := procs[lost].stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopping %s took %s", info.Cluster.Leader, time.Since(start))
	start = time.Now()
	var rest []string
	for i, u := range urls {
		if i != lost {
			rest = append(rest, u)
		}
	}
	left := strings.Join(rest, ",")
	// Wait for the survivors to elect a new stream leader (a request sent
	// during the election can go unanswered until its timeout), then
	// publish through them.
	nc, err = store.Connect(store.ConnectOptions{URL: left})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		s, err := js.Stream(ctx, events.EventsStream)
		if err != nil {
			return err
		}
		if l := s.CachedInfo().Cluster.Leader; l == "" || l == info.Cluster.Leader {
			return fmt.Errorf("stream leader is %q", l)
		}
		return nil
	})
	t.Logf("new stream leader after %s", time.Since(start))
	natstest.Eventually(t, 30*time.Second, func() error {
		if r := hoistAt(left, "scale", "acme.prod.web", "2"); r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	t.Logf("publish landed %s after losing the leader", time.Since(start))
	r := mustRun(t, 0, hoistAt(left, "log", "acme.prod.web", "--json"))
	if entries := decodeJSON[[]map[string]any](t, r.stdout); len(entries) != 2 || entries[1]["revision"] != 2.0 {
		t.Fatalf("after losing %s: log %s", info.Cluster.Leader, r.stdout)
	}
}
