package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAuthCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	auth := func(args ...string) result { return hoist(append([]string{"auth"}, append(args, "--dir", dir)...)...) }

	if r := mustRun(t, 0, auth("init")); !strings.Contains(r.stdout, "admin.creds") {
		t.Errorf("first init:\n%s", r)
	}
	if r := mustRun(t, 0, auth("init")); !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("second init:\n%s", r)
	}

	out := t.TempDir()
	creds := filepath.Join(out, "agent-1.creds")
	r := mustRun(t, 0, auth("issue", "agent", "--name", "agent-1", "--node", "node-1", "--scopes", "acme.prod.web,acme.prod.api", "--out", creds))
	for _, want := range []string{"wrote " + creds + " (0600): agent agent-1 on node node-1 for acme.prod.web,acme.prod.api", "hoist.status.node-1.acme.prod.api", "_INBOX_agent-1.>"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("issue output lacks %q:\n%s", want, r.stdout)
		}
	}
	if fi, err := os.Stat(creds); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Errorf("creds file: %v %v", fi.Mode(), err)
	}
	// --out - prints the creds and says what it issued on stderr.
	r = mustRun(t, 0, auth("issue", "reader", "--name", "dash", "--out", "-"))
	if !strings.Contains(r.stdout, "BEGIN NATS USER JWT") || !strings.Contains(r.stderr, "issued reader dash for *.*.*") {
		t.Errorf("issue to stdout:\n%s", r)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"issue"}, "usage: hoist auth issue ROLE"},
		{[]string{"issue", "root", "--name", "x"}, `unknown role "root"`},
		{[]string{"issue", "deployer", "--scopes", "acme.prod.*"}, "--name is required"},
		{[]string{"issue", "deployer", "--name", "ci"}, "has no scope patterns"},
		{[]string{"issue", "deployer", "--name", "ci", "--scopes", "acme.prod"}, "3 dot-separated tokens"},
		{[]string{"issue", "deployer", "--name", "Ci", "--scopes", "acme.prod.*"}, `name "Ci" has 'C' at byte 1`},
		{[]string{"issue", "agent", "--name", "a2", "--scopes", "acme.prod.web"}, `node "" is empty`},
		{[]string{"issue", "agent", "--name", "a2", "--node", "n2", "--scopes", "acme.*.web"}, "an agent serves literal scopes"},
		{[]string{"issue", "reader", "--name", "other", "--out", creds}, "exists: remove it or pick another --out"},
		{[]string{"issue", "reader", "--name", "agent-1", "--out", filepath.Join(out, "x.creds")}, "revoke it first"},
		{[]string{"issue", "reader", "--name", "r", "--expires", "-1h", "--out", filepath.Join(out, "r.creds")}, "expiry -1h0m0s is negative"},
		{[]string{"revoke"}, "usage: hoist auth revoke NAME"},
		{[]string{"revoke", "nobody"}, "no such credential"},
		{[]string{"ls", "extra"}, "got 1 argument"},
	} {
		if r := auth(c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("hoist auth %s: want exit 2 and %q, got %s", strings.Join(c.args, " "), c.want, r)
		}
	}

	// Without a server the revocation is recorded and the command says the
	// push is still owed.
	r = hoist("--nats-url", "nats://127.0.0.1:1", "auth", "revoke", "agent-1", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "It is recorded in "+dir) || !strings.Contains(r.stdout, "revoked agent-1") {
		t.Errorf("revoke without a server: %s", r)
	}
	if r := mustRun(t, 0, auth("revoke", "agent-1", "--no-push")); !strings.Contains(r.stdout, "agent-1 was revoked already") {
		t.Errorf("revoke again: %s", r)
	}

	list := decodeJSON[[]map[string]any](t, mustRun(t, 0, auth("ls", "--json")).stdout)
	states := map[string]string{}
	for _, u := range list {
		states[u["name"].(string)] = u["state"].(string)
	}
	if states["admin"] != "live" || states["dash"] != "live" || !strings.HasPrefix(states["agent-1"], "revoked ") || len(states) != 5 {
		t.Errorf("ls: %v", states)
	}
	found := false
	for line := range strings.Lines(mustRun(t, 0, auth("ls")).stdout) {
		if f := strings.Fields(line); len(f) == 8 && f[0] == "agent-1" {
			found = f[1] == "agent" && f[2] == "node-1" && f[3] == "acme.prod.web,acme.prod.api" && f[5] == "never" && f[6] == "revoked"
		}
	}
	if !found {
		t.Errorf("ls has no revoked agent-1 row:\n%s", mustRun(t, 0, auth("ls")).stdout)
	}

	r = mustRun(t, 0, auth("nats-config", "--resolver-dir", "/srv/nats/jwt"))
	for _, want := range []string{"operator: \"eyJ", "system_account: A", "type: full", `dir: "/srv/nats/jwt"`, "resolver_preload: {", "# HOIST", "# SYS", "jetstream: {"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("nats-config lacks %q:\n%s", want, r.stdout)
		}
	}

	if r := hoist("auth", "ls", "--dir", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "hoist auth init") {
		t.Errorf("ls of an empty directory: %s", r)
	}
}
