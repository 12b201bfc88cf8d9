package balancer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// canaryScope is a scope with two stable backends and one canary backend
// on node n1, behind a balancer fed by NATS.
type canaryScope struct {
	t              *testing.T
	b              *Balancer
	pub            *publisher
	s1, s2, canary *backend
	base           string
	rev            uint64
}

func newCanaryScope(t *testing.T) *canaryScope {
	srv := natstest.Start(t)
	cs := &canaryScope{t: t, b: natsBalancer(t, srv, nil), pub: &publisher{t: t, st: srv.Store(t)},
		s1: newBackend(t, "s1", nil), s2: newBackend(t, "s2", nil), canary: newBackend(t, "canary", nil)}
	proxy := httptest.NewUnstartedServer(cs.b.Handler())
	proxy.Config.BaseContext = func(net.Listener) context.Context { return cs.b.reqCtx }
	proxy.Start()
	t.Cleanup(proxy.Close)
	cs.base = proxy.URL
	return cs
}

// report publishes n1's report at the next revision, with traffic.
func (cs *canaryScope) report(tr *events.Traffic, withCanary bool) {
	cs.rev++
	r := events.BackendsReport{Node: "n1", Scope: web, Revision: cs.rev, Hosts: []string{"web.example.com"},
		Backends: []string{cs.s1.addr(), cs.s2.addr()}, Slots: map[string]int{cs.s1.addr(): 0, cs.s2.addr(): 1}, Traffic: tr}
	if withCanary {
		r.Backends = append(r.Backends, cs.canary.addr())
		r.Canary = map[string]int{cs.canary.addr(): 0}
	}
	cs.pub.report(r)
}

// waitCanary polls until the table's pool has the canary split want
// (nil: none) and n backends.
func (cs *canaryScope) waitCanary(want *events.CanaryTraffic, n int) *Pool {
	cs.t.Helper()
	var p *Pool
	natstest.Eventually(cs.t, 10*time.Second, func() error {
		tb := cs.b.Table()
		if tb == nil || tb.Pool(web) == nil {
			return fmt.Errorf("no pool yet")
		}
		p = tb.Pool(web)
		got := p.canary()
		if (got == nil) != (want == nil) || got != nil && *got != *want || len(p.Backends) != n {
			return fmt.Errorf("canary %+v with %d backends, want %+v with %d\n%s", got, len(p.Backends), want, n, tb)
		}
		return nil
	})
	return p
}

// send makes n requests through the balancer and counts them by backend.
func (cs *canaryScope) send(client *http.Client, n int) map[string]int {
	cs.t.Helper()
	by := map[string]int{}
	for range n {
		res, _ := get(cs.t, client, cs.base, "web.example.com", "/")
		by[res.Header.Get("X-Backend")]++
	}
	return by
}

// The side is chosen first, by share; then the backend within it. Over
// 10,000 requests at 10% the canary gets 10% ± 1% (smooth round-robin
// makes it exact), the stable side the rest, split evenly by score.
func TestCanarySplitByShare(t *testing.T) {
	cs := newCanaryScope(t)
	c := &events.CanaryTraffic{ID: 2, Share: 10}
	cs.report(&events.Traffic{Canary: c}, true)
	p := cs.waitCanary(c, 3)
	if p.CanaryID != 2 || !strings.Contains(cs.b.Table().String(), cs.canary.addr()+" nodes=n1 score=100(default) weight=100 canary") {
		t.Fatalf("canary ID %d, table:\n%s", p.CanaryID, cs.b.Table())
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()

	const n = 10_000
	by := cs.send(client, n)
	t.Logf("share 10%%: %v", by)
	if got := by["canary"]; got < n*9/100 || got > n*11/100 {
		t.Errorf("canary got %d of %d requests, want 10%% ± 1%%", got, n)
	}
	if d := by["s1"] - by["s2"]; d < -1 || d > 1 {
		t.Errorf("stable side split %d/%d, want even", by["s1"], by["s2"])
	}

	// A shift takes effect once the report carries it.
	c = &events.CanaryTraffic{ID: 2, Share: 50}
	cs.report(&events.Traffic{Canary: c}, true)
	cs.waitCanary(c, 3)
	by = cs.send(client, 1000)
	if by["canary"] != 500 {
		t.Errorf("share 50%%: %v, want canary 500", by)
	}

	// A canary's slot score weighs it within its side: with one canary
	// backend it changes nothing of the share.
	cs.pub.score(web, events.CanarySlot("n1", 0), 20)
	waitWeight(t, cs.b, web, cs.canary.addr(), 20)
	if by = cs.send(client, 1000); by["canary"] != 500 {
		t.Errorf("share 50%% with a scored canary: %v, want canary 500", by)
	}

	// Aborted: the canary's backend is still reported until its replica
	// stops, and gets nothing new.
	cs.report(nil, true)
	cs.waitCanary(nil, 3)
	if v := cs.b.TableView(); v.Scopes[0].Backends[sideIndex(v, cs.canary.addr())].Side != "canary-ended" {
		t.Errorf("side of the aborted canary's backend: %+v", v.Scopes[0].Backends)
	}
	if by = cs.send(client, 200); by["canary"] != 0 || by["s1"]+by["s2"] != 200 {
		t.Errorf("after an abort: %v, want nothing to the canary", by)
	}
}

func sideIndex(v TableView, addr string) int {
	for i, b := range v.Scopes[0].Backends {
		if b.Addr == addr {
			return i
		}
	}
	return -1
}

// A canary whose replicas are not up yet costs nothing; one left alone
// takes everything.
func TestCanarySideWithoutBackends(t *testing.T) {
	cs := newCanaryScope(t)
	c := &events.CanaryTraffic{ID: 3, Share: 30}
	cs.report(&events.Traffic{Canary: c}, false)
	cs.waitCanary(c, 2)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	if by := cs.send(client, 100); by["s1"]+by["s2"] != 100 {
		t.Errorf("canary with no backend: %v", by)
	}
	// Only the canary's backend is reported (the stable ones gone).
	cs.rev++
	cs.pub.report(events.BackendsReport{Node: "n1", Scope: web, Revision: cs.rev, Hosts: []string{"web.example.com"},
		Backends: []string{cs.canary.addr()}, Canary: map[string]int{cs.canary.addr(): 0}, Traffic: &events.Traffic{Canary: c}})
	cs.waitCanary(c, 1)
	if by := cs.send(client, 50); by["canary"] != 50 {
		t.Errorf("canary alone: %v", by)
	}
}

// With Sticky, a client stays on the side it first reached, by cookie,
// while that canary runs; a cookie of another canary is ignored.
func TestCanarySticky(t *testing.T) {
	cs := newCanaryScope(t)
	c := &events.CanaryTraffic{ID: 4, Share: 50, Sticky: true}
	cs.report(&events.Traffic{Canary: c}, true)
	cs.waitCanary(c, 3)

	sides := map[string]int{}
	for i := range 20 {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar}
		res, _ := get(t, client, cs.base, "web.example.com", "/")
		first := res.Header.Get("X-Backend") == "canary"
		ck := res.Header.Get("Set-Cookie")
		want := "hoist_canary=4.s"
		if first {
			want = "hoist_canary=4.c"
		}
		if !strings.HasPrefix(ck, want+";") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") || !strings.Contains(ck, "Path=/") {
			t.Fatalf("client %d: Set-Cookie %q, want %s; Path=/; HttpOnly; SameSite=Lax", i, ck, want)
		}
		for range 10 {
			res, _ := get(t, client, cs.base, "web.example.com", "/")
			if (res.Header.Get("X-Backend") == "canary") != first {
				t.Fatalf("client %d moved from its side (canary %v) to %s", i, first, res.Header.Get("X-Backend"))
			}
			if res.Header.Get("Set-Cookie") != "" {
				t.Fatalf("client %d was sent its cookie again: %q", i, res.Header.Get("Set-Cookie"))
			}
		}
		sides[fmt.Sprint(first)]++
	}
	if sides["true"] != 10 || sides["false"] != 10 {
		t.Errorf("new clients by side (canary true/false): %v, want 10/10 at 50%%", sides)
	}

	// A stale or broken cookie is ignored and replaced.
	for _, v := range []string{"3.c", "4.x", "garbage", "04.c"} {
		req, _ := http.NewRequest(http.MethodGet, cs.base+"/", nil)
		req.Host = "web.example.com"
		req.AddCookie(&http.Cookie{Name: canaryCookie, Value: v})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if !strings.HasPrefix(res.Header.Get("Set-Cookie"), "hoist_canary=4.") {
			t.Errorf("cookie %q: Set-Cookie %q, want a new one for canary 4", v, res.Header.Get("Set-Cookie"))
		}
	}
}

func FuzzParseCanaryCookie(f *testing.F) {
	for _, s := range []string{"4.c", "4.s", "0.c", "04.c", "18446744073709551615.s", "4.", ".c", "4.c.c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, s, ok := parseCanaryCookie(v)
		if !ok {
			return
		}
		if id == 0 || (s != sideCanary && s != sideStable) {
			t.Fatalf("%q parsed as %d, %v", v, id, s)
		}
		tag := map[side]string{sideCanary: "c", sideStable: "s"}[s]
		if fmt.Sprintf("%d.%s", id, tag) != v {
			t.Fatalf("%q does not write back as itself", v)
		}
	})
}

// Shares says what the split does: the canary's share to its side when
// both sides have weight, the rest to the stable side, then by weight.
func TestPoolSharesFollowTheSplit(t *testing.T) {
	stable := []Backend{{Addr: "10.0.0.1:80", Weight: 100}, {Addr: "10.0.0.2:80", Weight: 50}}
	canary := Backend{Addr: "10.0.0.9:80", Weight: 100, Canary: true}
	running := &events.Traffic{Canary: &events.CanaryTraffic{ID: 7, Share: 20}}
	for _, tt := range []struct {
		name     string
		backends []Backend
		traffic  *events.Traffic
		want     map[string]float64
	}{
		{"no canary", stable, nil, map[string]float64{"10.0.0.1:80": 2.0 / 3, "10.0.0.2:80": 1.0 / 3}},
		{"a canary at 20%", append(slices.Clone(stable), canary), running,
			map[string]float64{"10.0.0.1:80": 0.8 * 2 / 3, "10.0.0.2:80": 0.8 / 3, "10.0.0.9:80": 0.2}},
		{"its replicas not up yet", stable, running, map[string]float64{"10.0.0.1:80": 2.0 / 3, "10.0.0.2:80": 1.0 / 3}},
		{"the stable side drained", []Backend{{Addr: "10.0.0.1:80"}, canary}, running, map[string]float64{"10.0.0.1:80": 0, "10.0.0.9:80": 1}},
		{"an ended canary's backend", append(slices.Clone(stable), canary), nil,
			map[string]float64{"10.0.0.1:80": 2.0 / 3, "10.0.0.2:80": 1.0 / 3, "10.0.0.9:80": 0}},
	} {
		p := &Pool{Backends: tt.backends, Traffic: tt.traffic}
		got := p.Shares()
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
