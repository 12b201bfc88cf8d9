package haproxy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var lo = netip.MustParseAddr("127.0.0.1")

func target(slot string, port, weight int) Target {
	return Target{Backend: hostPort(lo, port), Slot: slot, Addr: lo, Port: port, Weight: weight}
}

// template is n servers hoist1..hoistN in maintenance at 127.0.0.1:1, as
// "server-template hoist N 127.0.0.1:1 disabled weight 100" starts them.
func template(n int) []Server {
	var out []Server
	for i := 1; i <= n; i++ {
		out = append(out, Server{ID: i, Name: "hoist" + string(rune('0'+i)), Addr: lo, Port: 1, OpState: 0,
			Admin: AdminForcedMaint | AdminConfigMaint, Weight: 100, Sessions: 0})
	}
	return out
}

// apply plays changes on servers as HAProxy would.
func apply(servers []Server, changes []Change) []Server {
	servers = slices.Clone(servers)
	for _, c := range changes {
		i := slices.IndexFunc(servers, func(s Server) bool { return s.Name == c.Server })
		s := &servers[i]
		switch c.What {
		case "addr":
			s.Addr, s.Port = c.Target.Addr, c.Target.Port
		case "weight":
			s.Weight = c.Target.Weight
		case "state":
			s.Admin &^= AdminForcedMaint | AdminForcedDrain
			switch c.To {
			case "maint":
				s.Admin |= AdminForcedMaint
			case "drain":
				s.Admin |= AdminForcedDrain
			}
		}
	}
	return servers
}

func render(changes []Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(c.Command("web") + "\n")
	}
	return b.String()
}

func TestPlanFirstSync(t *testing.T) {
	want := []Target{target("a#1", 31002, 100), target("a#0", 31001, 40)}
	changes, taken, err := Plan("web", template(3), want, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by slot: a#0 takes hoist1; address and weight before ready.
	wantCmds := `set server web/hoist1 addr 127.0.0.1 port 31001
set server web/hoist1 weight 40
set server web/hoist1 state ready
set server web/hoist2 addr 127.0.0.1 port 31002
set server web/hoist2 state ready
`
	if diff := cmp.Diff(wantCmds, render(changes)); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"hoist1": "a#0", "hoist2": "a#1"}, slots(taken)); diff != "" {
		t.Errorf("server → slot (-want +got):\n%s", diff)
	}
	// Applied, the same input plans nothing.
	if again, _, err := Plan("web", apply(template(3), changes), want, nil); err != nil || len(again) != 0 {
		t.Errorf("second plan = %s, %v; want nothing", render(again), err)
	}
}

// A start-first rollout of one slot: the new replica takes a free server
// while the old one drains, then the old one's server goes to maint once
// its sessions are done, and is the next free one.
func TestPlanRollout(t *testing.T) {
	servers := apply(template(3), mustPlan(t, template(3), []Target{target("a#0", 31001, 100), target("a#1", 31002, 100)}))

	// The agent announces the new replica of a#0 next to the old one.
	both := []Target{target("a#0", 31001, 100), target("a#0", 31003, 100), target("a#1", 31002, 100)}
	ch := mustPlan(t, servers, both)
	if got := render(ch); got != "set server web/hoist3 addr 127.0.0.1 port 31003\nset server web/hoist3 state ready\n" {
		t.Errorf("new replica:\n%s", got)
	}
	servers = apply(servers, ch)

	// Then withdraws the old one: drain it; nothing else moves.
	after := []Target{target("a#0", 31003, 100), target("a#1", 31002, 100)}
	servers[0].Sessions = 2
	ch = mustPlan(t, servers, after)
	if got := render(ch); got != "set server web/hoist1 state drain\n" {
		t.Errorf("old replica leaving:\n%s", got)
	}
	servers = apply(servers, ch)
	if ch := mustPlan(t, servers, after); len(ch) != 0 {
		t.Errorf("with sessions left, the draining server must wait: %s", render(ch))
	}
	servers[0].Sessions = 0
	if got := render(mustPlan(t, servers, after)); got != "set server web/hoist1 state maint\n" {
		t.Errorf("drained:\n%s", got)
	}
}

func TestPlanPrefersTheSlotsServer(t *testing.T) {
	servers := template(3)
	servers[0].Admin, servers[0].Port = 0, 30000 // hoist1 serves something that left
	servers[0].Admin = AdminForcedDrain
	servers[0].Sessions = 0
	ch, taken, err := Plan("web", servers, []Target{target("a#0", 31001, 100)}, map[string]string{"a#0": "hoist3"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"hoist3": "a#0"}, slots(taken)); diff != "" {
		t.Errorf("a#0 must go to hoist3, which last carried it (-want +got):\n%s\n%s", diff, render(ch))
	}
}

// slots is which slot each taken server carries.
func slots(taken map[string]Target) map[string]string {
	m := map[string]string{}
	for server, t := range taken {
		m[server] = t.Slot
	}
	return m
}

func TestPlanKeepsAReplicaOnItsServer(t *testing.T) {
	servers := template(4)
	servers[2].Admin, servers[2].Port, servers[2].Weight = AdminConfigMaint, 31001, 100 // ready, config flag left
	ch, taken, err := Plan("web", servers, []Target{target("a#0", 31001, 50)}, map[string]string{"a#0": "hoist1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := render(ch); got != "set server web/hoist3 weight 50\n" || taken["hoist3"].Port != 31001 {
		t.Errorf("a live replica must stay on its server and only change weight:\n%s", got)
	}
}

// A server that drains a replica which comes back (a rollout that paused
// and re-announced it) is set ready again, not replaced.
func TestPlanUndrains(t *testing.T) {
	servers := template(2)
	servers[0].Admin, servers[0].Port, servers[0].Sessions = AdminForcedDrain, 31001, 3
	if got := render(mustPlan(t, servers, []Target{target("a#0", 31001, 100)})); got != "set server web/hoist1 state ready\n" {
		t.Errorf("got:\n%s", got)
	}
}

func TestPlanScoreZeroKeepsTheServerReady(t *testing.T) {
	servers := apply(template(1), mustPlan(t, template(1), []Target{target("a#0", 31001, 100)}))
	if got := render(mustPlan(t, servers, []Target{target("a#0", 31001, 0)})); got != "set server web/hoist1 weight 0\n" {
		t.Errorf("got:\n%s", got)
	}
}

func TestPlanTooSmall(t *testing.T) {
	servers := template(2)
	servers[0].Admin, servers[0].Port, servers[0].Sessions = AdminForcedDrain, 30000, 1
	want := []Target{target("a#0", 31001, 100), target("a#1", 31002, 100)}
	ch, _, err := Plan("web", servers, want, nil)
	var small *TooSmallError
	if !errors.As(err, &small) {
		t.Fatalf("err = %v, want a *TooSmallError", err)
	}
	if small.Have != 2 || small.Need() != 3 || small.Live != 2 || small.Draining != 1 || !slices.Equal(small.Left, []string{"127.0.0.1:31002"}) {
		t.Errorf("%+v", small)
	}
	for _, w := range []string{"web has 2 servers and needs 3", "127.0.0.1:31002"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q should say %q", err, w)
		}
	}
	// What fits is still done.
	if got := render(ch); got != "set server web/hoist2 addr 127.0.0.1 port 31001\nset server web/hoist2 state ready\n" {
		t.Errorf("got:\n%s", got)
	}
}

func TestPlanEmptyFreesEverything(t *testing.T) {
	servers := apply(template(2), mustPlan(t, template(2), []Target{target("a#0", 31001, 100), target("a#1", 31002, 100)}))
	if got := render(mustPlan(t, servers, nil)); got != "set server web/hoist1 state drain\nset server web/hoist2 state drain\n" {
		t.Errorf("got:\n%s", got)
	}
}

func mustPlan(t *testing.T, servers []Server, want []Target) []Change {
	t.Helper()
	ch, _, err := Plan("web", servers, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
