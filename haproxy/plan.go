package haproxy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Target is one live replica a backend should send traffic to.
type Target struct {
	Backend string     // host:port, as the agent reports it
	Slot    string     // NODE#INDEX; "" for a backend no agent numbers
	Addr    netip.Addr // Backend's host, resolved
	Port    int
	Weight  int // 0-256: its score, 0 on a drained node; scaled by a canary's share (shareWeights)
}

// Change is one Runtime API command of a plan, with what it is for.
type Change struct {
	Server string // the template server it changes
	What   string // "addr", "weight" or "state"
	To     string // the new value: "10.0.0.5:31001", "80", "ready", "drain", "maint"
	From   string // the value HAProxy showed
	// Target is the replica the server is to serve; for a server being
	// freed, only the address it leaves (Backend, Addr, Port).
	Target Target
}

// Command is the Runtime API command for c on HAProxy backend backend.
func (c Change) Command(backend string) string {
	cmd := "set server " + backend + "/" + c.Server + " "
	switch c.What {
	case "addr":
		return cmd + "addr " + c.Target.Addr.String() + " port " + strconv.Itoa(c.Target.Port)
	case "weight":
		return cmd + "weight " + c.To
	}
	return cmd + "state " + c.To
}

// TooSmallError says a backend's server-template has fewer servers than
// the replicas it must carry.
type TooSmallError struct {
	Backend  string
	Have     int      // servers in the backend
	Live     int      // live replicas of its scope
	Draining int      // servers still finishing the sessions of a replica that left
	Left     []string // the replicas that got no server
}

// Need is how many servers the backend needs now.
func (e *TooSmallError) Need() int { return e.Live + e.Draining }

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("HAProxy backend %s has %d servers and needs %d now (%d live replicas, %d servers draining): %d replica(s) get no server (%v); "+
		"make its server-template at least the replicas of the scope plus one per node for rollouts",
		e.Backend, e.Have, e.Need(), e.Live, e.Draining, len(e.Left), e.Left)
}

// Plan says what to change so that backend's servers carry exactly want:
// each target on one server, every other server draining, then (once it has
// no session) in maintenance.
//
//   - A server that is not in maintenance and has a target's address keeps
//     it: a replica never moves between servers while it lives.
//   - A target without one takes a server in maintenance that has no
//     session left: the one already at its address if any, else the one
//     that last carried its slot (prefer, slot → server), else the first by
//     id. HAProxy has one address per server, so a rollout's new replica
//     takes another server than the one it replaces, which is still
//     draining.
//   - Servers taking a target come first (addr, then weight, then ready),
//     servers to free after (drain, then maint): capacity never dips.
//
// Plan does no I/O. servers are as HAProxy shows them now; targets with
// no server left are named in a *TooSmallError, returned with the changes
// that can be made.
func Plan(backend string, servers []Server, want []Target, prefer map[string]string) ([]Change, map[string]Target, error) {
	servers = slices.Clone(servers)
	slices.SortFunc(servers, func(a, b Server) int { return cmp.Compare(a.ID, b.ID) })
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b Target) int { return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Backend, b.Backend)) })

	type at struct {
		addr netip.Addr
		port int
	}
	taken := map[string]Target{} // server → target
	held := map[at]bool{}        // addresses served
	byAddr := map[at]string{}    // address → the live server that keeps it
	for _, s := range servers {
		k := at{s.Addr, s.Port}
		if _, dup := byAddr[k]; !s.Admin.Maint() && !dup {
			byAddr[k] = s.Name
		}
	}
	var pending []Target
	for _, t := range want {
		k := at{t.Addr, t.Port}
		if held[k] {
			continue // one backend reported twice: one server is enough
		}
		held[k] = true
		if name, ok := byAddr[k]; ok {
			taken[name] = t
			continue
		}
		pending = append(pending, t)
	}

	free := func(s Server) bool { _, used := taken[s.Name]; return !used && s.Admin.Maint() && s.Sessions <= 0 }
	var left []string
	for _, t := range pending {
		pick := ""
		for _, s := range servers { // already at its address: nothing to move
			if free(s) && s.Addr == t.Addr && s.Port == t.Port {
				pick = s.Name
				break
			}
		}
		if pick == "" {
			if p, ok := prefer[t.Slot]; ok && t.Slot != "" {
				if i := slices.IndexFunc(servers, func(s Server) bool { return s.Name == p }); i >= 0 && free(servers[i]) {
					pick = p
				}
			}
		}
		if pick == "" {
			if i := slices.IndexFunc(servers, free); i >= 0 {
				pick = servers[i].Name
			}
		}
		if pick == "" {
			left = append(left, t.Backend)
			continue
		}
		taken[pick] = t
	}

	var serve, release []Change
	draining := 0
	for _, s := range servers {
		t, ok := taken[s.Name]
		if !ok {
			switch {
			case s.Admin.Maint():
			case !s.Admin.Drain():
				release = append(release, Change{Server: s.Name, What: "state", To: "drain", From: s.state(), Target: leaving(s)})
				draining++
			case s.Sessions == 0:
				release = append(release, Change{Server: s.Name, What: "state", To: "maint", From: "drain", Target: leaving(s)})
			default: // sessions left, or unknown: wait for them
				draining++
			}
			continue
		}
		if s.Addr != t.Addr || s.Port != t.Port {
			serve = append(serve, Change{Server: s.Name, What: "addr", To: hostPort(t.Addr, t.Port), From: hostPort(s.Addr, s.Port), Target: t})
		}
		if s.Weight != t.Weight {
			serve = append(serve, Change{Server: s.Name, What: "weight", To: strconv.Itoa(t.Weight), From: strconv.Itoa(s.Weight), Target: t})
		}
		if s.Admin.Maint() || s.Admin.Drain() {
			serve = append(serve, Change{Server: s.Name, What: "state", To: "ready", From: s.state(), Target: t})
		}
	}
	changes := append(serve, release...)
	if len(left) > 0 {
		return changes, taken, &TooSmallError{Backend: backend, Have: len(servers), Live: len(held), Draining: draining, Left: left}
	}
	return changes, taken, nil
}

// leaving is the replica a server being freed served, as far as HAProxy
// knows it: its address.
func leaving(s Server) Target {
	return Target{Backend: hostPort(s.Addr, s.Port), Addr: s.Addr, Port: s.Port}
}

func hostPort(a netip.Addr, port int) string {
	if !a.IsValid() {
		return "-:" + strconv.Itoa(port)
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}
