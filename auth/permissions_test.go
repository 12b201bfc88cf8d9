package auth

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

func reads(stream, filter string) []string {
	return []string{"$JS.API.CONSUMER.CREATE." + stream + ".*." + filter, "$JS.API.DIRECT.GET." + stream + "." + filter}
}

func concat(lists ...[]string) []string { return slices.Concat(lists...) }

// deploys is what a deployer may publish on a scope pattern's subjects:
// the deployer kinds, under its own name.
func deploys(prefix, name string) []string {
	var out []string
	for _, k := range []string{"deployed", "scaled", "env_changed", "rolled_back", "removed", "secret_set", "secret_removed", "secret_rotate",
		"canary_started", "canary_shifted", "canary_promoted", "canary_aborted", "paused", "resumed", "maintenance_on", "maintenance_off"} {
		out = append(out, prefix+"."+k+"."+name)
	}
	return out
}

func TestPermissions(t *testing.T) {
	info := []string{"$JS.API.INFO"}
	cases := []struct {
		role    Role
		pub     []string
		sub     []string
		wantErr string
	}{
		{role: Role{Kind: KindAdmin, Name: "root"}, pub: []string{">"}, sub: []string{">"}},
		{
			role: Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}},
			pub: concat(info,
				deploys("hoist.scope.acme.prod.*", "alice"), []string{"hoist.score.acme.prod.*.*", "hoist.backends.acme.prod.*.*"},
				reads("HOIST_EVENTS", "hoist.scope.acme.prod.*.>"),
				reads("HOIST_SCORES", "hoist.score.acme.prod.*.>"),
				reads("HOIST_BACKENDS", "hoist.backends.acme.prod.*.>"),
				reads("HOIST_REPORTS", "hoist.status.*.acme.prod.*"),
				reads("HOIST_STATS", "hoist.stats.acme.prod.*.>"),
				reads("HOIST_EVENTS", "hoist.node.>")),
			sub: []string{"_INBOX_alice.>"},
		},
		{
			role: Role{Kind: KindDeployer, Name: "ci_bot", Scopes: []string{"acme.*.*", "globex.prod.web"}},
			pub: concat(info,
				deploys("hoist.scope.acme.*.*", "ci_bot"), []string{"hoist.score.acme.*.*.*", "hoist.backends.acme.*.*.*"},
				deploys("hoist.scope.globex.prod.web", "ci_bot"), []string{"hoist.score.globex.prod.web.*", "hoist.backends.globex.prod.web.*"},
				reads("HOIST_EVENTS", "hoist.scope.acme.*.*.>"),
				reads("HOIST_SCORES", "hoist.score.acme.*.*.>"),
				reads("HOIST_BACKENDS", "hoist.backends.acme.*.*.>"),
				reads("HOIST_REPORTS", "hoist.status.*.acme.*.*"),
				reads("HOIST_STATS", "hoist.stats.acme.*.*.>"),
				reads("HOIST_EVENTS", "hoist.scope.globex.prod.web.>"),
				reads("HOIST_SCORES", "hoist.score.globex.prod.web.>"),
				reads("HOIST_BACKENDS", "hoist.backends.globex.prod.web.>"),
				reads("HOIST_REPORTS", "hoist.status.*.globex.prod.web"),
				reads("HOIST_STATS", "hoist.stats.globex.prod.web.>"),
				reads("HOIST_EVENTS", "hoist.node.>")),
			sub: []string{"_INBOX_ci_bot.>"},
		},
		{
			role: Role{Kind: KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.web", "acme.prod.api"}},
			pub: concat(info,
				[]string{"hoist.node.node-1.node_drained.agent-1", "hoist.node.node-1.node_undrained.agent-1", "hoist.node.node-1.node_key.agent-1"},
				[]string{"hoist.backends.acme.prod.web.node-1", "hoist.status.node-1.acme.prod.web", "hoist.scope.acme.prod.web.secret_key.agent-1",
					"hoist.scope.acme.prod.web.canary_shifted.agent-1", "hoist.scope.acme.prod.web.canary_promoted.agent-1", "hoist.scope.acme.prod.web.canary_aborted.agent-1",
					"$KV.HOIST_LEASES.canary.acme.prod.web", "$JS.API.DIRECT.GET.KV_HOIST_LEASES.$KV.HOIST_LEASES.canary.acme.prod.web"},
				[]string{"hoist.backends.acme.prod.api.node-1", "hoist.status.node-1.acme.prod.api", "hoist.scope.acme.prod.api.secret_key.agent-1",
					"hoist.scope.acme.prod.api.canary_shifted.agent-1", "hoist.scope.acme.prod.api.canary_promoted.agent-1", "hoist.scope.acme.prod.api.canary_aborted.agent-1",
					"$KV.HOIST_LEASES.canary.acme.prod.api", "$JS.API.DIRECT.GET.KV_HOIST_LEASES.$KV.HOIST_LEASES.canary.acme.prod.api"},
				[]string{"$JS.API.STREAM.INFO.KV_HOIST_LEASES"},
				reads("HOIST_EVENTS", "hoist.scope.acme.prod.web.>"),
				reads("HOIST_SCORES", "hoist.score.acme.prod.web.>"),
				reads("HOIST_BACKENDS", "hoist.backends.acme.prod.web.node-1"),
				reads("HOIST_STATS", "hoist.stats.acme.prod.web.>"),
				reads("HOIST_EVENTS", "hoist.scope.acme.prod.api.>"),
				reads("HOIST_SCORES", "hoist.score.acme.prod.api.>"),
				reads("HOIST_BACKENDS", "hoist.backends.acme.prod.api.node-1"),
				reads("HOIST_STATS", "hoist.stats.acme.prod.api.>"),
				reads("HOIST_EVENTS", "hoist.node.node-1.>")),
			sub: []string{"_INBOX_agent-1.>"},
		},
		{
			role: Role{Kind: KindBalancer, Name: "lb-1"},
			pub: concat(info,
				[]string{"hoist.stats.*.*.*.lb-1"},
				reads("HOIST_BACKENDS", "hoist.backends.>"),
				reads("HOIST_SCORES", "hoist.score.>"),
				reads("HOIST_EVENTS", "hoist.node.>")),
			sub: []string{"_INBOX_lb-1.>"},
		},
		{
			role: Role{Kind: KindReader, Name: "dash"},
			pub: concat(info,
				reads("HOIST_EVENTS", "hoist.scope.*.*.*.>"),
				reads("HOIST_REPORTS", "hoist.status.*.*.*.*"),
				reads("HOIST_BACKENDS", "hoist.backends.*.*.*.>"),
				reads("HOIST_SCORES", "hoist.score.*.*.*.>"),
				reads("HOIST_STATS", "hoist.stats.*.*.*.>"),
				reads("HOIST_EVENTS", "hoist.node.>")),
			sub: []string{"_INBOX_dash.>"},
		},
		{
			role: Role{Kind: KindReader, Name: "acme-audit", Scopes: []string{"acme.*.*"}},
			pub: concat(info,
				reads("HOIST_EVENTS", "hoist.scope.acme.*.*.>"),
				reads("HOIST_REPORTS", "hoist.status.*.acme.*.*"),
				reads("HOIST_BACKENDS", "hoist.backends.acme.*.*.>"),
				reads("HOIST_SCORES", "hoist.score.acme.*.*.>"),
				reads("HOIST_STATS", "hoist.stats.acme.*.*.>"),
				reads("HOIST_EVENTS", "hoist.node.>")),
			sub: []string{"_INBOX_acme-audit.>"},
		},
		{role: Role{Kind: "root", Name: "x"}, wantErr: `unknown role "root"`},
		{role: Role{Kind: KindDeployer, Name: "alice"}, wantErr: "has no scope patterns"},
		{role: Role{Kind: KindDeployer, Name: "Alice", Scopes: []string{"acme.prod.*"}}, wantErr: `name "Alice" has 'A' at byte 1`},
		{role: Role{Kind: KindDeployer, Name: "a.b", Scopes: []string{"acme.prod.*"}}, wantErr: `has '.' at byte 2`},
		{role: Role{Kind: KindDeployer, Name: "-a", Scopes: []string{"acme.prod.*"}}, wantErr: "must start and end with a lowercase letter or digit"},
		{role: Role{Kind: KindDeployer, Name: strings.Repeat("a", 64), Scopes: []string{"acme.prod.*"}}, wantErr: "is 64 characters long (want at most 63)"},
		{role: Role{Kind: KindDeployer, Name: "", Scopes: []string{"acme.prod.*"}}, wantErr: "is empty"},
		{role: Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.>"}}, wantErr: "want client.env.solution (3 dot-separated tokens"},
		{role: Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.>"}}, wantErr: `solution ">" has '>'`},
		{role: Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.pr*d.web"}}, wantErr: `environment "pr*d" has '*'`},
		{role: Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod_x.web"}}, wantErr: `has '_' at byte 5`},
		{role: Role{Kind: KindAgent, Name: "agent-1", Scopes: []string{"acme.prod.web"}}, wantErr: `node "" is empty`},
		{role: Role{Kind: KindAgent, Name: "agent-1", Node: "node-1"}, wantErr: "serves no scopes"},
		{role: Role{Kind: KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.*"}}, wantErr: "an agent serves literal scopes"},
		{role: Role{Kind: KindAgent, Name: "agent-1", Node: "node.1", Scopes: []string{"acme.prod.web"}}, wantErr: `node "node.1" has '.'`},
		{role: Role{Kind: KindBalancer, Name: "lb", Scopes: []string{"acme.prod.web"}}, wantErr: "takes no scopes"},
		{role: Role{Kind: KindReader, Name: "r", Node: "node-1"}, wantErr: "only an agent has a node"},
	}
	for _, c := range cases {
		t.Run(c.role.String(), func(t *testing.T) {
			p, err := Permissions(c.role)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("want an invalid-role error with %q, got %v", c.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Pub.Allow, c.pub) {
				t.Errorf("publish allow:\n got %q\nwant %q", p.Pub.Allow, c.pub)
			}
			if !slices.Equal(p.Sub.Allow, c.sub) {
				t.Errorf("subscribe allow:\n got %q\nwant %q", p.Sub.Allow, c.sub)
			}
			if len(p.Pub.Deny)+len(p.Sub.Deny) != 0 {
				t.Errorf("deny lists %q %q: every permission is an allow", p.Pub.Deny, p.Sub.Deny)
			}
			if c.role.Kind == KindAdmin {
				if p.Resp != nil {
					t.Errorf("admin gets response permissions %+v", p.Resp)
				}
			} else if p.Resp == nil || p.Resp.MaxMsgs != 1 {
				t.Errorf("response permissions %+v, want max 1", p.Resp)
			}
			vr := jwt.CreateValidationResults()
			p.Validate(vr)
			if !vr.IsEmpty() {
				t.Errorf("permissions do not validate: %+v", vr.Issues)
			}
		})
	}
}

// The config-file rendering is the same permissions: nats-server parses it
// back into the subjects Permissions returns.
func TestAuthorizationConfigParses(t *testing.T) {
	roles := []Role{
		{Kind: KindAdmin, Name: "root"},
		{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}},
		{Kind: KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.web", "acme.prod.api"}},
		{Kind: KindBalancer, Name: "lb-1"},
		{Kind: KindReader, Name: "dash"},
	}
	cfg, err := AuthorizationConfig(roles)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		t.Setenv(strings.ToUpper(strings.ReplaceAll(r.Name, "-", "_"))+"_PASSWORD", "pw-"+r.Name)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if len(opts.Users) != len(roles) {
		t.Fatalf("%d users parsed, want %d\n%s", len(opts.Users), len(roles), cfg)
	}
	for i, r := range roles {
		u := opts.Users[i]
		want, _ := Permissions(r)
		if u.Username != r.Name || u.Password != "pw-"+r.Name {
			t.Errorf("user %d: %q/%q", i, u.Username, u.Password)
		}
		if !slices.Equal(u.Permissions.Publish.Allow, []string(want.Pub.Allow)) || !slices.Equal(u.Permissions.Subscribe.Allow, []string(want.Sub.Allow)) {
			t.Errorf("%s: parsed permissions differ:\n pub %q\n sub %q", r, u.Permissions.Publish.Allow, u.Permissions.Subscribe.Allow)
		}
		if (want.Resp == nil) != (u.Permissions.Response == nil) || (want.Resp != nil && u.Permissions.Response.MaxMsgs != want.Resp.MaxMsgs) {
			t.Errorf("%s: response permissions %+v, want %+v", r, u.Permissions.Response, want.Resp)
		}
	}
}
