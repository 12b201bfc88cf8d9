package events_test

import (
	"errors"
	"strings"
	"testing"
	"testing/quick"

	"github.com/hoist-dev/hoist/events"
)

func TestParseSubject(t *testing.T) {
	long := strings.Repeat("a", events.MaxActorLen+1)
	tests := []struct {
		subject string
		want    events.Address
		history string // what Address.History names, even when invalid
		bad     bool
	}{
		// Valid, one or two of each family.
		{subject: "hoist.scope.acme.prod.web.deployed.ci",
			want: events.Address{Family: events.FamilyScope, Scope: web, Kind: events.KindDeployed, Actor: "ci"}, history: "scope acme.prod.web"},
		{subject: "hoist.scope.acme.prod.web.env_changed.ana@build-7+x_y",
			want: events.Address{Family: events.FamilyScope, Scope: web, Kind: events.KindEnvChanged, Actor: "ana@build-7+x_y"}, history: "scope acme.prod.web"},
		{subject: "hoist.scope.acme.prod.web.scaled", // written before actors joined the subject
			want: events.Address{Family: events.FamilyScope, Scope: web, Kind: events.KindScaled}, history: "scope acme.prod.web"},
		{subject: "hoist.node.node-1.node_drained.ops",
			want: events.Address{Family: events.FamilyNode, Node: "node-1", Kind: events.KindNodeDrained, Actor: "ops"}, history: "node node-1"},
		{subject: "hoist.node.node-1.node_undrained",
			want: events.Address{Family: events.FamilyNode, Node: "node-1", Kind: events.KindNodeUndrained}, history: "node node-1"},
		{subject: "hoist.score.acme.prod.web.10_0_0_1:8080",
			want: events.Address{Family: events.FamilyScore, Scope: web, Kind: events.KindBackendScored, Backend: "10.0.0.1:8080"}},
		{subject: "hoist.score.acme.prod.web.app_internal:80",
			want: events.Address{Family: events.FamilyScore, Scope: web, Kind: events.KindBackendScored, Backend: "app.internal:80"}},
		{subject: "hoist.backends.acme.prod.web.node-1",
			want: events.Address{Family: events.FamilyBackends, Scope: web, Node: "node-1"}},
		{subject: "hoist.status.node-1.acme.prod.web",
			want: events.Address{Family: events.FamilyStatus, Scope: web, Node: "node-1"}},
		{subject: "hoist.stats.acme.prod.web.lb-1",
			want: events.Address{Family: events.FamilyStats, Scope: web, Balancer: "lb-1"}},

		// Invalid, but the subject names a scope's or node's history: the
		// message is counted in it.
		{subject: "hoist.scope.acme.prod.web.bogus.ci", want: events.Address{Family: events.FamilyScope, Scope: web}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.scope.acme.prod.web.node_drained.ci", want: events.Address{Family: events.FamilyScope, Scope: web}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.scope.acme.prod.web.backend_scored.ci", want: events.Address{Family: events.FamilyScope, Scope: web}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.scope.acme.prod.web.deployed.bad!actor", want: events.Address{Family: events.FamilyScope, Scope: web, Kind: events.KindDeployed}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.scope.acme.prod.web.deployed." + long, want: events.Address{Family: events.FamilyScope, Scope: web, Kind: events.KindDeployed}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.scope.acme.prod.web.deployed.ci.extra", want: events.Address{Family: events.FamilyScope, Scope: web}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.scope.acme.prod.web", want: events.Address{Family: events.FamilyScope, Scope: web}, history: "scope acme.prod.web", bad: true},
		{subject: "hoist.node.node-1.deployed.ci", want: events.Address{Family: events.FamilyNode, Node: "node-1"}, history: "node node-1", bad: true},
		{subject: "hoist.node.node-1.node_drained.a.b", want: events.Address{Family: events.FamilyNode, Node: "node-1"}, history: "node node-1", bad: true},
		{subject: "hoist.node.node-1.node_drained.-=-", want: events.Address{Family: events.FamilyNode, Node: "node-1", Kind: events.KindNodeDrained}, history: "node node-1", bad: true},

		// Invalid, and no history.
		{subject: "", bad: true},
		{subject: "hoist", bad: true},
		{subject: "nats.scope.acme.prod.web.deployed.ci", bad: true},
		{subject: "hoist.other.acme.prod.web", bad: true},
		{subject: "hoist.scope", bad: true},
		{subject: "hoist.stats.acme.prod.web", bad: true},
		{subject: "hoist.stats.acme.prod.web.lb-1.x", bad: true},
		{subject: "hoist.stats.acme.prod.web.bad!name", bad: true},
		{subject: "hoist.scope.acme.prod", bad: true},
		{subject: "hoist.scope.ACME.prod.web.deployed.ci", bad: true},
		{subject: "hoist.scope.acme.prod.-web.deployed.ci", bad: true},
		{subject: "hoist.node.Node-1.node_drained.ci", bad: true},
		{subject: "hoist.node.node_1.node_drained.ci", bad: true},
		{subject: "hoist.score.acme.prod.web", bad: true},
		{subject: "hoist.score.acme.prod.web.10_0_0_1", bad: true},
		{subject: "hoist.score.acme.prod.web.10_0_0_1:0", bad: true},
		{subject: "hoist.score.acme.prod.web.10_0_0_1:80.x", bad: true},
		{subject: "hoist.score.acme.prod.Web.10_0_0_1:80", bad: true},
		{subject: "hoist.backends.acme.prod.web", bad: true},
		{subject: "hoist.backends.acme.prod.web.NODE", bad: true},
		{subject: "hoist.backends.acme.prod.web.node-1.x", bad: true},
		{subject: "hoist.status.node-1.acme.prod", bad: true},
		{subject: "hoist.status.node-1.acme.prod.web.x", bad: true},
		{subject: "hoist.status.-bad.acme.prod.web", bad: true},
		{subject: "hoist.status.node-1.acme.PROD.web", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			got, err := events.ParseSubject(tt.subject)
			if (err != nil) != tt.bad {
				t.Fatalf("err = %v, want bad=%v", err, tt.bad)
			}
			if got != tt.want {
				t.Errorf("address %+v, want %+v", got, tt.want)
			}
			if got.History() != tt.history {
				t.Errorf("history %q, want %q", got.History(), tt.history)
			}
			if err != nil && !strings.Contains(err.Error(), tt.subject) {
				t.Errorf("error %q does not name the subject", err)
			}
		})
	}
}

// The subject builders and ParseSubject are inverses.
func TestSubjectsRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		subject string
		want    events.Address
	}{
		{events.ScopeSubject(web, events.KindRolledBack, "ci"), events.Address{Family: events.FamilyScope, Scope: web, Kind: events.KindRolledBack, Actor: "ci"}},
		{events.NodeSubject("n-9", events.KindNodeUndrained, "ops"), events.Address{Family: events.FamilyNode, Node: "n-9", Kind: events.KindNodeUndrained, Actor: "ops"}},
		{events.ScoreSubject(web, "10.1.2.3:31001"), events.Address{Family: events.FamilyScore, Scope: web, Kind: events.KindBackendScored, Backend: "10.1.2.3:31001"}},
		{events.ScoreSubject(web, "[::1]:80"), events.Address{Family: events.FamilyScore, Scope: web, Kind: events.KindBackendScored, Backend: "[::1]:80"}},
		{events.ScoreSubject(web, "[::ffff:10.0.0.1]:80"), events.Address{Family: events.FamilyScore, Scope: web, Kind: events.KindBackendScored, Backend: "[::ffff:10.0.0.1]:80"}},
		{events.BackendsSubject(web, "node-2"), events.Address{Family: events.FamilyBackends, Scope: web, Node: "node-2"}},
		{events.StatusSubject("node-2", web), events.Address{Family: events.FamilyStatus, Scope: web, Node: "node-2"}},
	} {
		got, err := events.ParseSubject(tt.subject)
		if err != nil || got != tt.want {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v", tt.subject, got, err, tt.want)
		}
	}
	// Each history's filter matches its subjects (and only its own).
	if !matches(events.ScopeFilter(web), events.ScopeSubject(web, events.KindDeployed, "ci")) ||
		matches(events.ScopeFilter(web), events.ScopeSubject(api, events.KindDeployed, "ci")) ||
		!matches(events.NodeFilter("n1"), events.NodeSubject("n1", events.KindNodeDrained, "ops")) ||
		matches(events.NodeFilter("n1"), events.NodeSubject("n10", events.KindNodeDrained, "ops")) ||
		!matches(events.StatusFilter(web), events.StatusSubject("n1", web)) ||
		matches(events.StatusFilter(web), events.StatusSubject("n1", api)) {
		t.Error("a filter matches the wrong subjects")
	}
}

// matches is NATS subject matching, for the filters above.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

func TestValidateActor(t *testing.T) {
	for _, ok := range []string{"ci", "ana@build-7", "a+b_c-d", strings.Repeat("x", events.MaxActorLen), "UPPER"} {
		if err := events.ValidateActor(ok); err != nil {
			t.Errorf("ValidateActor(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "a*", "a>", "é", strings.Repeat("x", events.MaxActorLen+1)} {
		err := events.ValidateActor(bad)
		if err == nil || !errors.Is(err, events.ErrInvalid) {
			t.Errorf("ValidateActor(%q) = %v, want an invalid-input error", bad, err)
		}
	}
	for in, want := range map[string]string{
		"ana@host.example": "ana@host-example",
		"":                 "unknown",
		"a b":              "a-b",
		"ok":               "ok",
	} {
		if got := events.ActorName(in); got != want {
			t.Errorf("ActorName(%q) = %q, want %q", in, got, want)
		}
	}
	// Whatever the name, ActorName makes a valid actor, which is one
	// subject token.
	if err := quick.Check(func(s string) bool {
		a := events.ActorName(s)
		return events.ValidateActor(a) == nil && !strings.ContainsAny(a, ".*> \t\r\n")
	}, nil); err != nil {
		t.Error(err)
	}
}
