package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nuid"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// These tests put messages on the balancer's subjects the way a buggy or
// hostile publisher could (raw, past every check of the store), and check
// that what events.Interpret rejects is counted, logged with its subject,
// sequence and reason, and changes nothing. Each ends on a fence: an
// accepted message on the same stream after the rejected ones, so that
// once the fence shows, the rejected messages were folded too.

// logRecorder keeps the warnings and errors a balancer logs.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (l *logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// checkRejected fails unless exactly one warning names the message at seq
// on subject as skipped for a reason that is want.
func (l *logRecorder) checkRejected(t *testing.T, subject string, seq uint64, want error) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []map[string]any
	for _, m := range l.recs {
		if m["subject"] == subject && m["seq"] == seq {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one warning for %s at %d, got %v (all: %v)", subject, seq, found, l.recs)
	}
	err, _ := found[0]["err"].(error)
	if !errors.Is(err, events.ErrRejected) || !errors.Is(err, want) {
		t.Fatalf("%s at %d: logged %v, want a rejection for %v", subject, seq, err, want)
	}
}

// encodeEvent encodes e as hoist would, with an id and a time.
func encodeEvent(t *testing.T, e *events.Event) []byte {
	t.Helper()
	e.Schema = events.SchemaVersion
	if e.ID == "" {
		e.ID = nuid.Next()
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

func encodeReport(t *testing.T, r events.BackendsReport) []byte {
	t.Helper()
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scoreBody(t *testing.T, sc events.Scope, backend string, n int, at time.Time) []byte {
	t.Helper()
	return encodeEvent(t, &events.Event{Scope: sc, Time: at, Data: &events.BackendScored{Backend: backend, Score: n}})
}

// waitSkipped polls until b has skipped n messages of src.
func waitSkipped(t *testing.T, b *Balancer, src source, n uint64) {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, func() error {
		if got := b.skipped[src].Load(); got != n {
			return fmt.Errorf("skipped %d %s messages, want %d", got, src, n)
		}
		return nil
	})
}

// checkWeights fails unless b's table gives exactly these weights.
func checkWeights(t *testing.T, b *Balancer, sc events.Scope, want map[string]int) {
	t.Helper()
	tb := b.Table()
	got := map[string]int{}
	for _, be := range tb.Pool(sc).Backends {
		got[be.Addr] = be.Weight
	}
	if !equalMaps(got, want) {
		t.Fatalf("%s weights %v, want %v\n%s", sc, got, want, tb)
	}
}

// (a) A score whose body scores another backend, or another scope's
// backend, than its subject names is rejected and moves no weight.
func TestScoreThatDisagreesWithItsSubjectIsRejected(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	const a, b = "10.0.0.1:80", "10.0.0.2:80"
	pub.announce(web, "node-1", a, b)
	pub.announce(api, "node-1", a, b)
	pub.score(web, a, 60)
	pub.score(web, b, 30)
	pub.score(api, a, 20)
	logs := &logRecorder{}
	bal := natsBalancerLog(t, srv, nil, slog.New(logs))
	checkWeights(t, bal, web, map[string]int{a: 60, b: 30})
	checkWeights(t, bal, api, map[string]int{a: 20, b: 100})

	subject := events.ScoreSubject(web, a)
	otherBackend := publishRaw(t, srv, subject, scoreBody(t, web, b, 1, time.Time{}))
	otherScope := publishRaw(t, srv, subject, scoreBody(t, api, a, 2, time.Time{}))
	waitSkipped(t, bal, srcScores, 2)
	// The fence, encoded the same way: only the disagreement was wrong.
	publishRaw(t, srv, events.ScoreSubject(api, b), scoreBody(t, api, b, 40, time.Time{}))
	waitWeight(t, bal, api, b, 40)

	checkWeights(t, bal, web, map[string]int{a: 60, b: 30})
	checkWeights(t, bal, api, map[string]int{a: 20, b: 40})
	logs.checkRejected(t, subject, otherBackend, events.ErrDisagrees)
	logs.checkRejected(t, subject, otherScope, events.ErrDisagrees)
	if n := bal.skipped[srcScores].Load(); n != 2 {
		t.Fatalf("skipped %d scores, want 2", n)
	}
}

// (b) A score dated 9999-12-31 is rejected: it cannot outrank the scores
// stored after it, nor stay fresh for ever. A score dated a little ahead
// (within events.MaxClockSkew) is taken, and ages from the moment the
// server stored it, not from its date.
func TestScoreDatedInTheFutureNeitherOutranksNorOutlives(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	const a = "10.0.0.1:80"
	pub.announce(web, "node-1", a)
	pub.score(web, a, 40)
	var clk clock
	logs := &logRecorder{}
	bal := natsBalancerLog(t, srv, func(c *Config) { c.ScoreMaxAge, c.DefaultScore, c.Now = time.Minute, 50, clk.now }, slog.New(logs))
	waitWeight(t, bal, web, a, 40)

	subject := events.ScoreSubject(web, a)
	doomsday := publishRaw(t, srv, subject, scoreBody(t, web, a, 1, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)))
	waitSkipped(t, bal, srcScores, 1)
	publishRaw(t, srv, subject, scoreBody(t, web, a, 70, time.Time{}))
	waitWeight(t, bal, web, a, 70)
	logs.checkRejected(t, subject, doomsday, events.ErrFuture)

	// Just within the skew ahead of the server's clock: accepted, but aged
	// by the time it was stored.
	ahead := events.MaxClockSkew - 10*time.Second
	publishRaw(t, srv, subject, scoreBody(t, web, a, 80, time.Now().Add(ahead)))
	waitWeight(t, bal, web, a, 80)
	if n := bal.skipped[srcScores].Load(); n != 1 {
		t.Fatalf("skipped %d scores, want only the one dated 9999", n)
	}
	// One max age and a little after it was stored, it is stale; by its
	// own date it would have almost MaxClockSkew more to live.
	clk.advance(time.Minute + 5*time.Second)
	waitWeight(t, bal, web, a, 50)
}

// (c) A backends report on hoist.backends.<web>.node-1 whose body is for
// another scope or another node is rejected: no backend, host or node of
// it reaches the table.
func TestBackendsReportThatDisagreesWithItsSubjectIsRejected(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	const a, c = "10.0.0.1:80", "10.0.1.1:80"
	pub.report(events.BackendsReport{Node: "node-1", Scope: web, Revision: 1, Backends: []string{a}, Hosts: []string{"web.example.com"}})
	pub.report(events.BackendsReport{Node: "node-2", Scope: api, Revision: 1, Backends: []string{c}, Hosts: []string{"api.example.com"}})
	logs := &logRecorder{}
	bal := natsBalancerLog(t, srv, nil, slog.New(logs))
	before := bal.Table().String()

	subject := events.BackendsSubject(web, "node-1")
	otherScope := publishRaw(t, srv, subject, encodeReport(t, events.BackendsReport{Node: "node-1", Scope: api, Revision: 9,
		Backends: []string{"10.9.9.9:80"}, Hosts: []string{"evil.example.com"}}))
	otherNode := publishRaw(t, srv, subject, encodeReport(t, events.BackendsReport{Node: "node-2", Scope: web, Revision: 9,
		Backends: []string{"10.9.9.8:80"}, Hosts: []string{"evil2.example.com"}, Removed: true}))
	waitSkipped(t, bal, srcReports, 2)
	if got := bal.Table().String(); got != before {
		t.Fatalf("rejected reports changed the table:\n%s\n--- before\n%s", got, before)
	}
	// The fence: node-1's next accepted report, on the same subject.
	const d = "10.0.0.4:80"
	publishRaw(t, srv, subject, encodeReport(t, events.BackendsReport{Node: "node-1", Scope: web, Revision: 2,
		Backends: []string{a, d}, Hosts: []string{"web.example.com"}}))
	waitWeight(t, bal, web, d, 100)

	tb := bal.Table()
	if tb.Route("evil.example.com") != nil || tb.Route("evil2.example.com") != nil || tb.Pool(web).Removed {
		t.Fatalf("a rejected report's hosts or removal reached the table:\n%s", tb)
	}
	if p := tb.Route("api.example.com"); p == nil || p.Scope != api || len(p.Backends) != 1 || p.Backends[0].Addr != c {
		t.Fatalf("api changed:\n%s", tb)
	}
	for _, be := range tb.Pool(web).Backends {
		if !slices.Equal(be.Nodes, []string{"node-1"}) || strings.HasPrefix(be.Addr, "10.9.9.") {
			t.Fatalf("a rejected report's node or backend reached web:\n%s", tb)
		}
	}
	logs.checkRejected(t, subject, otherScope, events.ErrDisagrees)
	logs.checkRejected(t, subject, otherNode, events.ErrDisagrees)
}

// (d) A node_drained on node-1's subject whose body drains node-2 is
// rejected: neither node is drained. It still takes revision 1 of
// node-1's history, so node-1's next drain (revision 2) applies, in this
// balancer and in one that reads the history from the start.
func TestNodeEventThatDisagreesWithItsSubjectIsRejected(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	const a, b = "10.0.0.1:80", "10.0.0.2:80"
	pub.announce(web, "node-1", a)
	pub.announce(web, "node-2", b)
	logs := &logRecorder{}
	bal := natsBalancerLog(t, srv, nil, slog.New(logs))
	checkWeights(t, bal, web, map[string]int{a: 100, b: 100})

	subject := events.NodeSubject("node-1", events.KindNodeDrained, "ops")
	seq := publishRaw(t, srv, subject, encodeEvent(t, &events.Event{Node: "node-2", Revision: 1, Actor: "ops", Data: &events.NodeDrained{Reason: "not yours"}}))
	waitSkipped(t, bal, srcNodes, 1)
	checkWeights(t, bal, web, map[string]int{a: 100, b: 100})
	logs.checkRejected(t, subject, seq, events.ErrDisagrees)

	pub.node("node-1", true) // the fence: revision 2 of node-1's history
	waitWeight(t, bal, web, a, 0)
	checkWeights(t, bal, web, map[string]int{a: 0, b: 100})
	if n := bal.skipped[srcNodes].Load(); n != 1 {
		t.Fatalf("skipped %d node events, want 1", n)
	}
	fresh := natsBalancer(t, srv, nil)
	if fresh.Table().Digest() != bal.Table().Digest() {
		t.Fatalf("a fresh balancer reads the node history otherwise:\n%s\n--- running\n%s", fresh.Table(), bal.Table())
	}
}
