package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// Every escape of the documented roles, tried through hoist's own commands
// against 'hoist server --auth': each is denied within 2 s with a message
// that names the operation and the subject, and exits 1; what each role
// needs works.
func TestRolesCannotLeaveTheirScopes(t *testing.T) {
	w := newAuthWorld(t)
	admin, as := w.admin, w.as
	ci := w.issue("ci", "deployer", "--scopes", "acme.prod.*")
	agent := w.issue("agent-1", "agent", "--node", "node-1", "--scopes", "acme.prod.web,acme.prod.api")
	bal := w.issue("edge", "balancer")
	reader := w.issue("dash", "reader", "--scopes", "acme.prod.*")

	// What the roles need; a deployer's first publish works on a fresh
	// server, which made the streams at start.
	t.Setenv("HOIST_ACTOR", "mallory") // a credential's events carry its own name, whatever this says
	mustRun(t, 0, as(ci, "deploy", "acme.prod.web", "--image", "web:1"))
	mustRun(t, 0, as(admin, "deploy", "acme.staging.web", "--image", "web:1", "--env", "DB_URL=staging"))
	mustRun(t, 0, as(admin, "score", "acme.staging.web", "10.0.0.9:80", "50"))
	mustRun(t, 0, as(ci, "scale", "acme.prod.web", "2", "--expect-revision", "1"))
	mustRun(t, 0, as(ci, "score", "acme.prod.web", "10.0.0.1:80", "40"))
	r := mustRun(t, 0, as(ci, "log", "acme.prod.web", "--json"))
	var log []struct{ Actor string }
	if err := json.Unmarshal([]byte(r.stdout), &log); err != nil || len(log) != 2 || log[0].Actor != "ci" || log[1].Actor != "ci" {
		t.Fatalf("actors: %v %s", err, r)
	}
	r = mustRun(t, 0, as(ci, "scopes", "acme.prod.*"))
	if !strings.Contains(r.stdout, "acme.prod.web") || strings.Contains(r.stdout, "staging") {
		t.Fatalf("scopes of ci: %s", r)
	}
	mustRun(t, 0, as(reader, "state", "acme.prod.web"))
	mustRun(t, 0, as(agent, "drain", "node-1"))
	mustRun(t, 0, as(agent, "undrain", "node-1"))
	mustRun(t, 0, as(agent, "announce", "acme.prod.web", "127.0.0.1:9000", "--node", "node-1"))

	for _, c := range []struct {
		who  string
		args []string
	}{
		{ci, []string{"remove", "acme.staging.web"}},
		{ci, []string{"deploy", "acme.staging.web", "--image", "evil:1"}},
		{ci, []string{"score", "acme.staging.web", "10.0.0.9:80", "0"}},
		{ci, []string{"state", "acme.staging.web"}},
		{ci, []string{"log", "acme.staging.web"}},
		{ci, []string{"drain", "node-1"}},
		{ci, []string{"scopes"}},
		{agent, []string{"drain", "node-2"}},
		{agent, []string{"undrain", "node-2"}},
		{agent, []string{"announce", "acme.staging.web", "127.0.0.1:9000", "--node", "node-1"}},
		{agent, []string{"announce", "acme.prod.web", "127.0.0.1:9000", "--node", "node-2"}},
		{agent, []string{"state", "acme.staging.web"}},
		{agent, []string{"scale", "acme.prod.web", "9"}},
		{bal, []string{"state", "acme.staging.web"}},
		{bal, []string{"log", "acme.prod.web"}},
		{bal, []string{"score", "acme.prod.web", "10.0.0.1:80", "0"}},
		{reader, []string{"scale", "acme.prod.web", "3"}},
		{reader, []string{"state", "acme.staging.web"}},
	} {
		start := time.Now()
		r := as(c.who, c.args...)
		took := time.Since(start)
		who := strings.TrimSuffix(filepath.Base(c.who), ".creds")
		if r.code != 1 || !strings.Contains(r.stderr, "permission denied: ") {
			t.Errorf("%s: hoist %s: want exit 1 and a permission denial, got %s", who, strings.Join(c.args, " "), r)
			continue
		}
		if took > 2*time.Second {
			t.Errorf("%s: hoist %s: the denial took %s", who, strings.Join(c.args, " "), took)
		}
	}

	// Nothing the denied commands tried reached the log.
	r = mustRun(t, 0, as(admin, "log", "acme.staging.web", "--json"))
	if err := json.Unmarshal([]byte(r.stdout), &log); err != nil || len(log) != 1 {
		t.Fatalf("staging after the escapes: %s", r)
	}
	r = mustRun(t, 0, as(admin, "state", "acme.prod.web", "--json"))
	if !strings.Contains(r.stdout, `"replicas": 2`) {
		t.Fatalf("prod after the escapes: %s", r)
	}
}

// An agent's credential reads its own scopes and node, and the server
// refuses it every other scope's events, whatever filter it asks for.
func TestAgentCredentialReadsOnlyItsScopes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	mustRun(t, 0, hoist("auth", "init", "--dir", dir))
	p := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--name", "t1", "--auth", dir)
	url := p.wait(t, 30*time.Second)
	creds := filepath.Join(t.TempDir(), "agent-1.creds")
	mustRun(t, 0, hoist("auth", "issue", "agent", "--dir", dir, "--name", "agent-1", "--node", "node-1", "--scopes", "acme.prod.web", "--out", creds))
	mustRun(t, 0, hoistAt(url, "--nats-creds", filepath.Join(dir, "admin.creds"), "deploy", "acme.prod.api", "--image", "api:1"))

	nc, err := store.Connect(store.ConnectOptions{URL: url, CredsFile: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := store.Open(ctx, nc, store.Options{})
	if err != nil {
		t.Fatalf("open store as the agent: %v", err)
	}
	if _, err := st.ScopeHistory(ctx, events.MustParseScope("acme.prod.web"), 0); err != nil {
		t.Fatalf("own scope: %v", err)
	}
	if _, err := st.NodeHistory(ctx, "node-1"); err != nil {
		t.Fatalf("own node: %v", err)
	}
	for _, f := range []store.Follow{
		{Stream: events.EventsStream, Filter: events.ScopeFilter(events.MustParseScope("acme.prod.api"))},
		{Stream: events.EventsStream, Filter: events.AllScopesFilter},
		{Stream: events.EventsStream, Filter: events.NodeFilter("node-2")},
		{Stream: events.ReportsStream, Filter: events.AllStatusFilter},
	} {
		start := time.Now()
		err := st.Follow(ctx, f, func(events.Message) {}, nil)
		if !errors.Is(err, store.ErrPermission) || time.Since(start) > 2*time.Second {
			t.Errorf("read %s: %v after %s", f.Filter, err, time.Since(start))
		}
	}
}
