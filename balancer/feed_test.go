package balancer

import (
	"fmt"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// publishRaw puts bytes on a subject, bypassing every check: garbage, as a
// buggy or hostile publisher would send it.
func publishRaw(t *testing.T, st *events.Store, subject string, data []byte) {
	t.Helper()
	if _, err := st.JetStream().Publish(t.Context(), subject, data); err != nil {
		t.Fatalf("publish raw to %s: %v", subject, err)
	}
}

// publishGarbage sends one unusable message to each stream, including a
// well-formed event that the fold must skip and a garbage report on a
// subject that already has a valid one.
func publishGarbage(t *testing.T, st *events.Store) {
	t.Helper()
	junk := events.MustParseScope("acme.prod.junk")
	scaled, err := events.Encode(&events.Event{ID: "x1", Scope: junk, Revision: 1, Time: time.Now(), Data: &events.Scaled{Replicas: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for subject, data := range map[string][]byte{
		events.ScopeSubject(junk, events.KindDeployed):                            []byte("not json"),
		events.ScopeSubject(junk, events.KindScaled):                              scaled, // no deploy yet: the fold skips it
		events.NodeSubject("n1", events.KindNodeDrained):                          []byte(`{}`),
		events.ScoreSubject(web, "10.0.0.1:80"):                                   []byte(`{"schema":1,"kind":"backend_scored"}`),
		events.ScoreSubject(web, "10.0.0.2:80"):                                   []byte(`{"schema":99,"kind":"backend_scored","id":"z","data":{}}`),
		events.BackendsSubject(web, "n1"):                                         []byte(`{"node":"n1","scope":"acme.prod.web","backends":["not a backend"]}`),
		events.BackendsSubject(web, "n3"):                                         []byte(`]]]`),
		events.ScopeSubject(events.MustParseScope("acme.prod.x"), "no_such_kind"): []byte(`{"schema":1,"id":"q","kind":"no_such_kind","scope":"acme.prod.x","data":{}}`),
	} {
		publishRaw(t, st, subject, data)
	}
}

func TestBalancersConvergeAndSkipGarbage(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	pub := &publisher{t: t, st: st}

	pub.deploy(web, events.Spec{Hosts: []string{"web.example.com", "*.web.example.com"}})
	pub.deploy(api, events.Spec{Hosts: []string{"api.example.com"}})
	pub.announce(web, "n1", "10.0.0.1:80", "10.0.0.2:80")
	pub.announce(web, "n2", "10.0.0.3:80")
	pub.announce(api, "n1", "10.0.1.1:80")
	pub.score(web, "10.0.0.1:80", 75)
	pub.score(web, "10.0.0.2:80", 25)
	pub.node("n2", true)
	publishGarbage(t, st) // the last report of web/n1 is now garbage

	b1 := natsBalancer(t, srv, nil)
	want := map[string]int{"10.0.0.1:80": 75, "10.0.0.2:80": 25, "10.0.0.3:80": 0}
	for addr, w := range want {
		waitWeight(t, b1, web, addr, w)
	}
	if b1.Table().Route("x.web.example.com") == nil || b1.Table().Pool(events.MustParseScope("acme.prod.junk")) != nil {
		t.Fatalf("table after garbage:\n%s", b1.Table())
	}
	var skipped uint64
	for i := range b1.skipped {
		skipped += b1.skipped[i].Load()
	}
	if skipped != 8 {
		t.Fatalf("skipped %d messages, want the 8 garbage ones", skipped)
	}

	// Live changes while b1 runs; b2 starts in the middle, b3 at the end.
	pub.score(web, "10.0.0.1:80", 10)
	pub.node("n2", false)
	b2 := natsBalancer(t, srv, nil)
	pub.announce(api, "n1") // withdrawn
	pub.score(web, "10.0.0.3:80", 5)
	pub.deploy(api, events.Spec{Hosts: []string{"api2.example.com"}})
	publishGarbage(t, st)
	b3 := natsBalancer(t, srv, nil)

	waitWeight(t, b1, web, "10.0.0.3:80", 5)
	natstest.Eventually(t, 10*time.Second, func() error {
		d1, d2, d3 := b1.Table().Digest(), b2.Table().Digest(), b3.Table().Digest()
		if d1 != d2 || d1 != d3 {
			return fmt.Errorf("digests differ:\n%s\n--- b2\n%s\n--- b3\n%s", b1.Table(), b2.Table(), b3.Table())
		}
		if _, ok := b1.Table().Weight(api, "10.0.1.1:80"); ok || b1.Table().Route("api2.example.com") == nil {
			return fmt.Errorf("api not updated:\n%s", b1.Table())
		}
		return nil
	})
	for addr, w := range map[string]int{"10.0.0.1:80": 10, "10.0.0.2:80": 25, "10.0.0.3:80": 5} {
		if got, _ := b3.Table().Weight(web, addr); got != w {
			t.Errorf("b3: %s weight %d, want %d\n%s", addr, got, w, b3.Table())
		}
	}
}

func TestFeedResumesAfterNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	pub.announce(web, "n1", "10.0.0.1:80")
	b := natsBalancer(t, srv, nil)
	waitWeight(t, b, web, "10.0.0.1:80", 100)

	srv.Restart()
	pub2 := &publisher{t: t, st: srv.Store(t)}
	pub2.score(web, "10.0.0.1:80", 33)
	waitWeight(t, b, web, "10.0.0.1:80", 33)
	pub2.announce(web, "n1", "10.0.0.1:80", "10.0.0.2:80")
	waitWeight(t, b, web, "10.0.0.2:80", 100)
}

func TestStaleScoresFallBackToDefault(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	pub.announce(web, "n1", "10.0.0.1:80")
	var clk clock
	b := natsBalancer(t, srv, func(c *Config) { c.ScoreMaxAge, c.DefaultScore, c.Now = time.Minute, 50, clk.now })
	pub.score(web, "10.0.0.1:80", 90)
	waitWeight(t, b, web, "10.0.0.1:80", 90)
	// The builder notices on its own that the score went stale.
	clk.advance(2 * time.Minute)
	waitWeight(t, b, web, "10.0.0.1:80", 50)
}
