package main

import (
	"context"
	"encoding/json"
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

// Secrets under 'hoist server --auth', as the documented roles use them:
// only an admin grants, a deployer sets values it can never read back, a
// reader and the log see only ciphertext, and the agent's replica gets
// the value. Bad input is refused before anything is published.
func TestSecretsUnderRoles(t *testing.T) {
	w := newAuthWorld(t)
	url, out, admin, as := w.url, w.out, w.admin, w.as
	node := agtNode()
	ci := w.issue("ci", "deployer", "--scopes", "acme.prod.*")
	agent := w.issue("agent-1", "agent", "--node", node, "--scopes", "acme.prod.web")
	reader := w.issue("dash", "reader", "--scopes", "acme.prod.*")
	const scope, value = "acme.prod.web", "s3cr3t-value-7f1c"
	set := func(creds, stdin string, args ...string) result {
		return hoistInput(stdin, append([]string{"--nats-url", url, "--nats-creds", creds, "secret", "set", scope}, args...)...)
	}

	agentDir := t.TempDir()
	t.Cleanup(func() { stopProcessReplicas(t, node, filepath.Join(agentDir, "data", "process")) })
	nodeToml := filepath.Join(agentDir, "node.toml")
	agtWriteFile(t, nodeToml, fmt.Sprintf("version = \"1\"\nname = %q\nclient = \"acme\"\nenvironment = \"prod\"\nsolution = \"web\"\nadvertise = \"127.0.0.1\"\n", node))
	mustRun(t, 0, as(ci, "deploy", scope, "--command", imagetest.DemoBinary(t), "--port", "8080", "--health-path", "/up"))
	// The agent reads its connection from the environment, once, at start.
	t.Setenv("HOIST_NATS_URL", url)
	t.Setenv("HOIST_NATS_CREDS", agent)
	ag := startAgentCmd(t, "--node-config", nodeToml, "--runtime", "process",
		"--data", filepath.Join(agentDir, "data"), "--agent-check", "", "--heartbeat", "200ms", "--resync", "1s")
	t.Setenv("HOIST_NATS_CREDS", admin)
	mustRun(t, 0, as(ci, "wait", scope, "--timeout", "1m"))

	// Before any grant there is no key to seal to; bad input is refused.
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{value, []string{"DB_PASSWORD"}, "no secret key yet"},
		{"", []string{"DB_PASSWORD"}, "the value is empty"},
		{"", []string{"DB_PASSWORD", value}, "SCOPE NAME"},
		{value, []string{"DB_PASSWORD", "--as-file", "run/x"}, "must be an absolute path"},
		{value, []string{"DB_PASSWORD", "--as-file", "/run/../x"}, "not a clean file path"},
		{value, []string{"1BAD"}, "not a valid name"},
		{value, []string{"DB_PASSWORD", "--from-file", filepath.Join(out, "missing")}, "--from-file"},
	} {
		r := set(ci, c.stdin, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr+r.stdout, value) {
			t.Errorf("secret set %v: want exit 2 with %q and no value, got %s", c.args, c.want, r)
		}
	}

	// Only an admin grants, and only a node that announced a key.
	if r := as(ci, "secret", "grant", scope, node); r.code != exitFailure || !strings.Contains(r.stderr, "permission denied: publish on hoist.scope.acme.prod.web.secret_granted.ci") {
		t.Errorf("a deployer granted: %s", r)
	}
	if r := as(admin, "secret", "grant", scope, "node-9"); r.code != exitUsage || !strings.Contains(r.stderr, "has announced no key") {
		t.Errorf("grant of a node that never ran: %s", r)
	}
	if r := mustRun(t, 0, as(admin, "secret", "grant", scope, node)); !strings.Contains(r.stdout, "holds key v1") {
		t.Errorf("grant should wait for the key: %s", r)
	}

	// A deployer sets the value; the replica gets it; no output shows it.
	r := mustRun(t, 0, set(ci, value+"\n", "DEMO_MESSAGE"))
	if !strings.Contains(r.stdout, "secret DEMO_MESSAGE set (sealed to key v1)") {
		t.Errorf("secret set: %s", r)
	}
	mustRun(t, 0, as(ci, "wait", scope, "--timeout", "1m"))
	v := agtHealthy(t, scope, 1)
	if got := demoMessage(t, v.Replicas[0].Backend); got != value {
		t.Fatalf("the replica's message is %q, want the secret", got)
	}
	if r := as(agent, "secret", "set", scope, "X"); r.code == 0 {
		t.Errorf("an agent set a secret: %s", r)
	}
	for who, creds := range map[string]string{"ci": ci, "dash": reader, "admin": admin} {
		for _, args := range [][]string{{"log", scope}, {"log", scope, "--json"}, {"state", scope}, {"state", scope, "--json", "--show-secrets"}, {"status", scope}, {"secret", "ls", scope}} {
			r := mustRun(t, 0, as(creds, args...))
			if strings.Contains(r.stdout+r.stderr, value) {
				t.Errorf("%s: hoist %s shows the value", who, strings.Join(args, " "))
			}
		}
	}
	r = mustRun(t, 0, as(reader, "secret", "ls", scope))
	for _, want := range []string{"DEMO_MESSAGE", "env", "v1", "ci", node, "key v1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("secret ls lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(ag.log.String(), value) {
		t.Error("the agent's log holds the value")
	}

	// A plain env value that looks secret: warned about, masked on read.
	r = mustRun(t, 0, as(ci, "env", scope, "API_TOKEN=plain-token-1"))
	if !strings.Contains(r.stderr, "API_TOKEN looks like a secret") || strings.Contains(r.stdout, "plain-token-1") {
		t.Errorf("env with a secret-looking value: %s", r)
	}
	if r := mustRun(t, 0, as(reader, "state", scope)); strings.Contains(r.stdout, "plain-token-1") || !strings.Contains(r.stdout, "API_TOKEN=") {
		t.Errorf("state shows a secret-looking value unmasked: %s", r)
	}
	if r := mustRun(t, 0, as(reader, "state", scope, "--show-secrets")); !strings.Contains(r.stdout, "plain-token-1") {
		t.Errorf("state --show-secrets: %s", r)
	}
}

func demoMessage(t *testing.T, backend string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var msg string
	natstest.Eventually(t, 20*time.Second, func() error {
		resp, err := c.Get("http://" + backend + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var id struct{ Message string }
		if err := json.Unmarshal(b, &id); err != nil {
			return err
		}
		msg = id.Message
		return nil
	})
	return msg
}

// stopProcessReplicas stops and removes every process replica of node.
func stopProcessReplicas(t *testing.T, node, dir string) {
	p, err := process.New(process.Config{Node: node, DataDir: dir})
	if err != nil {
		t.Error(err)
		return
	}
	ctx := context.Background()
	reps, _ := p.List(ctx)
	for _, r := range reps {
		_ = p.Stop(ctx, r.ID, time.Second)
		_ = p.Remove(ctx, r.ID)
	}
}
