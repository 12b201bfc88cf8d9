package balancer

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/lifecycle"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// publishRaw puts bytes on a subject, bypassing every check: garbage, as a
// buggy or hostile publisher would send it. It returns the stream sequence
// the server stored it at.
func publishRaw(t *testing.T, srv *natstest.Server, subject string, data []byte) uint64 {
	t.Helper()
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), subject, data)
	if err != nil {
		t.Fatalf("publish raw to %s: %v", subject, err)
	}
	return ack.Sequence
}

// publishGarbage sends unusable messages to each stream the balancer
// reads: garbage, and well-formed messages whose body disagrees with their
// subject (another node, scope or backend) or is dated in the future. It
// also puts garbage on config subjects, which the balancer does not read.
// Each of the garbage reports lands on a subject that already has a valid
// one. It returns how many the balancer must skip.
func publishGarbage(t *testing.T, srv *natstest.Server) int {
	t.Helper()
	junk := events.MustParseScope("acme.prod.junk")
	enc := func(e *events.Event) []byte {
		t.Helper()
		e.Schema = 1
		if e.ID == "" {
			e.ID = fmt.Sprint(time.Now().UnixNano())
		}
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		b, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	report := func(r events.BackendsReport) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The balancer does not read config events at all.
	for subject, data := range map[string][]byte{
		events.ScopeSubject(junk, events.KindDeployed, "x"): []byte("not json"),
		events.ScopeSubject(web, events.KindRemoved, "x"):   enc(&events.Event{Scope: web, Revision: 1, Actor: "x", Data: &events.Removed{}}),
	} {
		publishRaw(t, srv, subject, data)
	}
	bad := map[string][]byte{
		events.NodeSubject("n1", events.KindNodeDrained, "x"): []byte(`{}`),
		// n2's drain on n1's subject: another node in the body.
		events.NodeSubject("n1", events.KindNodeUndrained, "x"): enc(&events.Event{Node: "n2", Revision: 2, Actor: "x", Data: &events.NodeUndrained{}}),
		events.ScoreSubject(web, "10.0.0.1:80"):                 []byte(`{"schema":1,"kind":"backend_scored"}`),
		events.ScoreSubject(web, "10.0.0.2:80"):                 []byte(`{"schema":99,"kind":"backend_scored","id":"z","data":{}}`),
		// A score for another backend, and one dated 9999-12-31.
		events.ScoreSubject(api, "10.0.1.1:80"): enc(&events.Event{Scope: api, Data: &events.BackendScored{Backend: "10.0.1.2:80", Score: 1}}),
		events.ScoreSubject(web, "10.0.0.3:80"): enc(&events.Event{Scope: web, Time: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), Data: &events.BackendScored{Backend: "10.0.0.3:80", Score: 1}}),
		events.BackendsSubject(web, "n1"):       []byte(`{"node":"n1","scope":"acme.prod.web","backends":["not a backend"]}`),
		events.BackendsSubject(web, "n3"):       []byte(`]]]`),
		// Another scope's and another node's backends in the body.
		events.BackendsSubject(api, "n1"): report(events.BackendsReport{Node: "n1", Scope: junk, Backends: []string{"10.9.9.9:80"}}),
		events.BackendsSubject(web, "n2"): report(events.BackendsReport{Node: "n9", Scope: web, Backends: []string{"10.9.9.9:80"}}),
	}
	for subject, data := range bad {
		publishRaw(t, srv, subject, data)
	}
	return len(bad)
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
	garbage := publishGarbage(t, srv) // the last report of web/n1 is now garbage

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
	if skipped != uint64(garbage) {
		t.Fatalf("skipped %d messages, want the %d garbage ones", skipped, garbage)
	}

	// Live changes while b1 runs; b2 starts in the middle, b3 at the end.
	pub.score(web, "10.0.0.1:80", 10)
	pub.node("n2", false)
	b2 := natsBalancer(t, srv, nil)
	pub.announce(api, "n1") // withdrawn
	pub.score(web, "10.0.0.3:80", 5)
	pub.deploy(api, events.Spec{Hosts: []string{"api2.example.com"}})
	publishGarbage(t, srv)
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

// A reader that stops for good (the server refuses the balancer a stream)
// ends WaitReady with its reason, instead of leaving it waiting for a
// catch-up that cannot come.
func TestWaitReadyFailsWhenAReaderStopsForGood(t *testing.T) {
	b, err := New(testConfig(), nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{readers: lifecycle.New(t.Context(), nil, 0), dead: make(chan struct{})}
	b.feed = f
	t.Cleanup(func() { b.Close() })
	refused := errors.New("refused")
	f.fail(fmt.Errorf("follow %s: %w", events.ScoresStream, refused))
	f.fail(errors.New("a later reason"))
	if err := b.WaitReady(t.Context()); !errors.Is(err, refused) {
		t.Fatalf("WaitReady: %v, want the first reader's reason", err)
	}
}
