package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// Each defect a raw message can have, published around hoist with nats.go
// and read back through the Store: the message takes its place (a revision
// when it is on a history's subject), is rejected with its reason, and
// misleads no reader and blocks no publish.

// defects is a server with web deployed (revision 1) and api deployed
// (revision 1), a Store, and a raw JetStream client.
func defects(t *testing.T) (*store.Store, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	for _, sc := range []events.Scope{web, api} {
		e := deployEvent("app:1", 1)
		e.Scope = sc
		if _, err := st.Append(ctx, e, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return st, rawJS(t, srv)
}

// wantRejected checks that rec is a rejection for reason at revision rev.
func wantRejected(t *testing.T, rec events.Record, rev uint64, reason error) {
	t.Helper()
	if rec.Accepted() || !errors.Is(rec.Err, reason) || rec.Revision != rev {
		t.Fatalf("record at revision %d: %+v (err %v); want rejected at %d for %v", rec.Revision, rec.Message, rec.Err, rev, reason)
	}
}

// appendAccepted appends e and checks that the history holds it, accepted,
// at the revision Append returned.
func appendAccepted(t *testing.T, st *store.Store, e *events.Event, opts store.AppendOptions) *events.Event {
	t.Helper()
	stored, err := st.Append(testCtx(t), e, opts)
	if err != nil {
		t.Fatalf("append after a stray message: %v", err)
	}
	var h *store.History
	var herr error
	if e.Kind.IsNodeKind() || e.Data.Kind().IsNodeKind() {
		h, herr = st.NodeHistory(testCtx(t), e.Node)
	} else {
		h, herr = st.ScopeHistory(testCtx(t), e.Scope, 0)
	}
	if herr != nil {
		t.Fatal(herr)
	}
	if stored.Revision == 0 || stored.Revision > uint64(len(h.Records)) {
		t.Fatalf("append returned revision %d; the history has %d", stored.Revision, len(h.Records))
	}
	rec := h.Records[stored.Revision-1]
	if !rec.Accepted() || rec.Event.ID != stored.ID {
		t.Fatalf("append returned revision %d, which holds %+v (err %v)", stored.Revision, rec.Event, rec.Err)
	}
	return stored
}

// (a) A body for api on web's subject is rejected in web's history, where
// it holds revision 2, and api never sees it.
func TestRawBodyOfAnotherScope(t *testing.T) {
	st, js := defects(t)
	apiBefore := history(t, st, api)
	body := mustEncode(t, &events.Event{Scope: api, Revision: 2, Actor: testActor, Data: &events.Scaled{Replicas: 9}})
	publishRaw(t, js, events.ScopeSubject(web, events.KindScaled, testActor), body)

	h := history(t, st, web)
	if len(h.Records) != 2 {
		t.Fatalf("web has %d records, want 2", len(h.Records))
	}
	wantRejected(t, h.Records[1], 2, events.ErrDisagrees)
	if h.Records[1].Scope != web {
		t.Fatalf("the rejection is counted in %s", h.Records[1].Scope)
	}
	apiAfter := history(t, st, api)
	if len(apiAfter.Records) != 1 || apiAfter.Head != apiBefore.Head {
		t.Fatalf("api's history changed: %+v, was %+v", apiAfter.Head, apiBefore.Head)
	}
	if s, _ := projector.Fold(api, apiAfter.Records); s.State().Spec.Replicas != 1 {
		t.Fatalf("api's state changed: %+v", s.State().Spec)
	}
	appendAccepted(t, st, scaleOf(web, 2), store.AppendOptions{})
}

// (b) A scale on a deploy subject is rejected.
func TestRawKindDisagrees(t *testing.T) {
	st, js := defects(t)
	body := mustEncode(t, &events.Event{Scope: web, Revision: 2, Actor: testActor, Data: &events.Scaled{Replicas: 9}})
	publishRaw(t, js, events.ScopeSubject(web, events.KindDeployed, testActor), body)
	h := history(t, st, web)
	wantRejected(t, h.Records[1], 2, events.ErrDisagrees)
	if f, _ := projector.Fold(web, h.Records); f.State().Spec.Replicas != 1 || f.Revision() != 2 {
		t.Fatalf("state %+v", f.State())
	}
	appendAccepted(t, st, scaleOf(web, 2), store.AppendOptions{})
}

// (c) A drain of node-1 on node-2's subject is rejected in node-2's history
// and leaves node-1's as it was.
func TestRawNodeDisagrees(t *testing.T) {
	st, js := defects(t)
	ctx := testCtx(t)
	appendAccepted(t, st, &events.Event{Node: "node-1", Actor: testActor, Data: &events.NodeUndrained{}}, store.AppendOptions{})
	before, err := st.NodeHistory(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	body := mustEncode(t, &events.Event{Node: "node-1", Revision: 1, Actor: testActor, Data: &events.NodeDrained{Reason: "hostile"}})
	publishRaw(t, js, events.NodeSubject("node-2", events.KindNodeDrained, testActor), body)

	n2, err := st.NodeHistory(ctx, "node-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(n2.Records) != 1 || len(n2.Events()) != 0 {
		t.Fatalf("node-2: %+v", n2.Records)
	}
	wantRejected(t, n2.Records[0], 1, events.ErrDisagrees)
	after, err := st.NodeHistory(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if after.Head != before.Head || len(after.Events()) != 1 || after.Events()[0].Kind != events.KindNodeUndrained {
		t.Fatalf("node-1 changed: %+v, was %+v", after.Records, before.Records)
	}
	// node-2's own next event goes on top of the stray one.
	if ev := appendAccepted(t, st, &events.Event{Node: "node-2", Actor: testActor, Data: &events.NodeDrained{}}, store.AppendOptions{}); ev.Revision != 2 {
		t.Fatalf("node-2's append got revision %d, want 2", ev.Revision)
	}
}

// (d) A readable event that claims revision 99, as a scope's last message,
// freezes nothing: the next append lands on top of it and is accepted, and
// an append expecting the head ScopeHead shows succeeds.
func TestRawClaimOfRevision99(t *testing.T) {
	st, js := defects(t)
	ctx := testCtx(t)
	body := mustEncode(t, &events.Event{Scope: web, Revision: 99, Actor: testActor, Data: &events.Scaled{Replicas: 99}})
	publishRaw(t, js, events.ScopeSubject(web, events.KindScaled, testActor), body)

	head, err := st.ScopeHead(ctx, web)
	if err != nil || head.Revision != 2 {
		t.Fatalf("head %+v %v, want revision 2", head, err)
	}
	wantRejected(t, history(t, st, web).Records[1], 2, events.ErrWrongRevision)
	if ev := appendAccepted(t, st, scaleOf(web, 3), store.AppendOptions{}); ev.Revision != 3 {
		t.Fatalf("next append at revision %d, want 3", ev.Revision)
	}
	// Again as the last message, then a conditional append on ScopeHead.
	publishRaw(t, js, events.ScopeSubject(web, events.KindScaled, testActor), body)
	head, err = st.ScopeHead(ctx, web)
	if err != nil || head.Revision != 4 {
		t.Fatalf("head %+v %v, want revision 4", head, err)
	}
	if ev := appendAccepted(t, st, scaleOf(web, 5), store.AppendOptions{ExpectRevision: &head.Revision}); ev.Revision != 5 {
		t.Fatalf("conditional append at revision %d, want 5", ev.Revision)
	}
	// And on the Head a history read shows.
	publishRaw(t, js, events.ScopeSubject(web, events.KindScaled, testActor), body)
	h := history(t, st, web)
	if ev := appendAccepted(t, st, scaleOf(web, 7), store.AppendOptions{Head: &h.Head}); ev.Revision != 7 {
		t.Fatalf("append on the read head at revision %d, want 7", ev.Revision)
	}
	f, _ := projector.Fold(web, history(t, st, web).Records)
	if f.Revision() != 7 || f.State().Spec.Replicas != 7 {
		t.Fatalf("fold: revision %d, %d replicas", f.Revision(), f.State().Spec.Replicas)
	}
}

// stray is a raw message a scope's subjects can receive besides hoist's
// own appends, and why readers reject it. build makes it for the revision
// it will hold.
type stray struct {
	name  string
	want  error
	build func(rev uint64) (subject string, data []byte)
}

func strays(t testing.TB) []stray {
	scopeSubj := events.ScopeSubject(web, events.KindScaled, testActor)
	ev := func(mod func(*events.Event)) func(uint64) (string, []byte) {
		return func(rev uint64) (string, []byte) {
			e := &events.Event{Scope: web, Revision: rev, Actor: testActor, Data: &events.Scaled{Replicas: 42}}
			mod(e)
			return scopeSubj, mustEncode(t, e)
		}
	}
	return []stray{
		{"another scope", events.ErrDisagrees, ev(func(e *events.Event) { e.Scope = api })},
		{"another actor", events.ErrDisagrees, ev(func(e *events.Event) { e.Actor = "mallory" })},
		{"another kind", events.ErrDisagrees, func(rev uint64) (string, []byte) {
			_, data := ev(func(*events.Event) {})(rev)
			return events.ScopeSubject(web, events.KindDeployed, testActor), data
		}},
		{"wrong revision", events.ErrWrongRevision, ev(func(e *events.Event) { e.Revision += 5 })},
		{"future date", events.ErrFuture, ev(func(e *events.Event) { e.Time = time.Now().Add(time.Hour) })},
		{"a node event", events.ErrRejected, func(rev uint64) (string, []byte) {
			return events.ScopeSubject(web, events.KindNodeDrained, testActor),
				mustEncode(t, &events.Event{Node: "node-1", Revision: rev, Actor: testActor, Data: &events.NodeDrained{}})
		}},
		{"a bad kind token", events.ErrRejected, func(rev uint64) (string, []byte) {
			_, data := ev(func(*events.Event) {})(rev)
			return "hoist.scope.acme.prod.web.teleported." + testActor, data
		}},
		{"garbage", events.ErrMalformed, func(uint64) (string, []byte) { return scopeSubj, []byte("\x00\xffnot json") }},
		{"900 KB", events.ErrEventTooLarge, func(uint64) (string, []byte) {
			return scopeSubj, []byte(`{"schema":1,"pad":"` + strings.Repeat("x", 900<<10) + `"}`)
		}},
		{"newer schema", events.ErrSchemaTooNew, func(rev uint64) (string, []byte) {
			return scopeSubj, []byte(`{"schema":2,"id":"n","kind":"scaled","scope":"acme.prod.web","revision":` +
				uitoa(rev) + `,"time":"2026-01-01T00:00:00Z","actor":"` + testActor + `","data":{"replicas":1}}`)
		}},
		{"unknown kind", events.ErrUnknownKind, func(rev uint64) (string, []byte) {
			return scopeSubj, []byte(`{"schema":1,"id":"u","kind":"teleported","scope":"acme.prod.web","revision":` +
				uitoa(rev) + `,"time":"2026-01-01T00:00:00Z","actor":"` + testActor + `","data":{}}`)
		}},
	}
}

func uitoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// (e) After any stray message, an Append that returned success is accepted
// at the revision it returned, whatever the publisher's cached head.
func TestAppendAfterAnyStrayIsAccepted(t *testing.T) {
	st, js := defects(t)
	rev := uint64(1)
	for _, s := range strays(t) {
		t.Run(s.name, func(t *testing.T) {
			subject, data := s.build(rev + 1)
			publishRaw(t, js, subject, data)
			wantRejected(t, history(t, st, web).Records[rev], rev+1, s.want)
			ev := appendAccepted(t, st, scaleOf(web, int(rev)), store.AppendOptions{})
			if ev.Revision != rev+2 {
				t.Fatalf("append at revision %d, want %d", ev.Revision, rev+2)
			}
			rev = ev.Revision
		})
	}
}

// (f) Scopes reports a scope's head, counting its rejected messages, so an
// append that expects it succeeds.
func TestScopesReportTheHead(t *testing.T) {
	st, js := defects(t)
	ctx := testCtx(t)
	publishRaw(t, js, events.ScopeSubject(web, events.KindScaled, testActor), []byte("garbage"))
	publishRaw(t, js, "hoist.scope.acme.prod.web.bogus."+testActor, []byte("{}"))
	publishRaw(t, js, "hoist.scope.acme.prod.web.scaled", []byte("legacy garbage"))
	scopes, err := st.Scopes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got store.ScopeInfo
	for _, s := range scopes {
		if s.Scope == web {
			got = s
		}
	}
	head, err := st.ScopeHead(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != 4 || head.Revision != 4 {
		t.Fatalf("Scopes says %d, ScopeHead %d; want 4 (1 event, 3 rejected)", got.Revision, head.Revision)
	}
	if ev := appendAccepted(t, st, scaleOf(web, 2), store.AppendOptions{ExpectRevision: &got.Revision}); ev.Revision != 5 {
		t.Fatalf("append at %d, want 5", ev.Revision)
	}
	if len(scopes) != 2 || scopes[0].Scope != api || scopes[0].Revision != 1 {
		t.Fatalf("scopes %+v", scopes)
	}
}

// scoresOf folds every stored score of scope, as a balancer does.
func scoresOf(t *testing.T, st *store.Store, scope events.Scope) (*projector.Scores, []error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	s := projector.NewScores()
	var skips []error
	err := st.Follow(ctx, store.Follow{Stream: events.ScoresStream, Filter: events.ScoreFilter(scope)}, func(m events.Message) {
		if err := s.Take(events.Interpret(m)); err != nil {
			skips = append(skips, err)
		}
	}, cancel)
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return s, skips
}

// (g) A score dated 9999-12-31 outranks no score, before or after it.
func TestRawScoreFromTheFuture(t *testing.T) {
	st, js := defects(t)
	ctx := testCtx(t)
	const backend = "10.0.0.1:8080"
	score := func(v int) {
		t.Helper()
		if _, err := st.Append(ctx, &events.Event{Scope: web, Actor: testActor, Data: &events.BackendScored{Backend: backend, Score: v}}, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	score(10)
	future := mustEncode(t, &events.Event{ID: "future", Scope: web, Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), Data: &events.BackendScored{Backend: backend, Score: 99}})
	publishRaw(t, js, events.ScoreSubject(web, backend), future)
	s, skips := scoresOf(t, st, web)
	if got, _ := s.Lookup(web, backend); got.Value != 10 {
		t.Fatalf("score %d, want 10: the future one must not replace it", got.Value)
	}
	if len(skips) != 1 || !errors.Is(skips[0], events.ErrFuture) {
		t.Fatalf("skips %v, want the future score", skips)
	}
	score(30)
	s, _ = scoresOf(t, st, web)
	got, _ := s.Lookup(web, backend)
	if got.Value != 30 || got.Time.Year() > time.Now().Year() {
		t.Fatalf("score %+v, want the later 30, aged by the server's time", got)
	}
}

// (h) A status on node-1's subject whose body is node-2's is rejected: it
// neither stands for node-2 nor adds to node-2's report.
func TestRawStatusOfAnotherNode(t *testing.T) {
	st, js := defects(t)
	ctx := testCtx(t)
	now := time.Now().UTC()
	report := func(node string, applied uint64) *events.NodeStatus {
		return &events.NodeStatus{Node: node, Time: now, Interval: events.Duration(time.Minute),
			Scopes: []events.ScopeStatus{{Scope: web, Desired: 1, Applied: applied, Phase: events.PhaseConverged}}}
	}
	if err := st.PublishStatus(ctx, report("node-2", 0)); err != nil {
		t.Fatal(err)
	}
	fake, err := encodeJSON(report("node-2", 1))
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, events.StatusSubject("node-1", web), fake)

	var skipped []events.Record
	got, err := st.NodeStatuses(ctx, web, func(r events.Record) { skipped = append(skipped, r) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Node != "node-2" || len(got[0].Scopes) != 1 || got[0].Scopes[0].Applied != 0 {
		t.Fatalf("statuses %+v, want node-2's own report only", got)
	}
	if len(skipped) != 1 || !errors.Is(skipped[0].Err, events.ErrDisagrees) || skipped[0].Node != "node-1" {
		t.Fatalf("skipped %+v", skipped)
	}
	// The same for every scope.
	all, err := st.NodeStatuses(ctx, events.Scope{}, nil)
	if err != nil || len(all) != 1 || len(all[0].Scopes) != 1 {
		t.Fatalf("all statuses %+v %v", all, err)
	}
}

// A node's report of two scopes is stored as one report per scope, and
// read back merged; a reader of one scope sees only that scope's.
func TestStatusPerScope(t *testing.T) {
	st, _ := defects(t)
	ctx := testCtx(t)
	now := time.Now().UTC()
	if err := st.PublishStatus(ctx, &events.NodeStatus{Node: "node-1", Time: now, Interval: events.Duration(time.Minute),
		Scopes: []events.ScopeStatus{{Scope: web, Applied: 1}, {Scope: api, Applied: 1}}}); err != nil {
		t.Fatal(err)
	}
	one, err := st.NodeStatuses(ctx, web, nil)
	if err != nil || len(one) != 1 || len(one[0].Scopes) != 1 || one[0].Scopes[0].Scope != web {
		t.Fatalf("web statuses %+v %v", one, err)
	}
	all, err := st.NodeStatuses(ctx, events.Scope{}, nil)
	if err != nil || len(all) != 1 || len(all[0].Scopes) != 2 || all[0].Scopes[0].Scope != api || all[0].Scopes[1].Scope != web {
		t.Fatalf("all statuses %+v %v", all, err)
	}
}

// A message written before actors joined the subject is read, with the
// actor its body claims, and counts like any other.
func TestLegacySubjectIsRead(t *testing.T) {
	st, js := defects(t)
	body := mustEncode(t, &events.Event{Scope: web, Revision: 2, Actor: "old-cli", Data: &events.Scaled{Replicas: 4}})
	publishRaw(t, js, "hoist.scope.acme.prod.web.scaled", body)
	h := history(t, st, web)
	if len(h.Records) != 2 || !h.Records[1].Accepted() || h.Records[1].Event.Actor != "old-cli" {
		t.Fatalf("legacy record: %+v", h.Records[1])
	}
	if ev := appendAccepted(t, st, scaleOf(web, 5), store.AppendOptions{}); ev.Revision != 3 {
		t.Fatalf("append at %d, want 3", ev.Revision)
	}
}

// A backends report on node-1's subject that is node-2's, or another
// scope's, is left out of BackendReports.
func TestRawBackendsOfAnotherNode(t *testing.T) {
	st, js := defects(t)
	ctx := testCtx(t)
	now := time.Now().UTC()
	for _, node := range []string{"node-1", "node-2"} {
		if err := st.PublishBackends(ctx, &events.BackendsReport{Node: node, Scope: web, Revision: 1, Backends: []string{"10.0.0.1:80"}, Time: now}); err != nil {
			t.Fatal(err)
		}
	}
	fake, err := encodeJSON(&events.BackendsReport{Node: "node-2", Scope: web, Revision: 1, Backends: []string{"10.6.6.6:80"}, Time: now})
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, events.BackendsSubject(web, "node-1"), fake)
	other, err := encodeJSON(&events.BackendsReport{Node: "node-2", Scope: api, Revision: 1, Backends: []string{"10.6.6.6:80"}, Time: now})
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, events.BackendsSubject(web, "node-2"), other)
	got, err := st.BackendReports(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	// Today each node's latest report is the rejected one, so none is
	// returned; falling back to a node's last accepted report would do as
	// well. What must never happen is a rejected report's content.
	for _, r := range got {
		if r.Scope != web || len(r.Backends) != 1 || r.Backends[0] != "10.0.0.1:80" {
			t.Fatalf("a rejected report was returned: %+v", r)
		}
	}
}

// A client may name any subject as the reply to a direct get, and the
// server itself then publishes the reply there, whatever the client may
// publish: a copy of a stored message (it carries Nats-Stream and
// Nats-Sequence). A copy of one of hoist's appends is refused by the stream
// (it carries the append's Msg-Id and expectation), but a copy of a message
// without them, or of a score past the duplicate window, is stored. It is
// rejected: on a history's subject it holds a revision, and on a score's
// subject it does not bring an old score back.
func TestDirectGetReplyAimedAtHoistSubjects(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const backend = "10.0.0.1:8080"
	nodeSubj := events.NodeSubject("node-1", events.KindNodeDrained, testActor)
	// Sequence 1 of each stream: messages with no headers.
	publishRaw(t, js, nodeSubj, mustEncode(t, &events.Event{Node: "node-1", Revision: 1, Actor: testActor, Data: &events.NodeDrained{}}))
	publishRaw(t, js, events.ScoreSubject(web, backend), mustEncode(t, &events.Event{Scope: web, Data: &events.BackendScored{Backend: backend, Score: 0}}))
	if _, err := st.Append(ctx, &events.Event{Scope: web, Actor: testActor, Data: &events.BackendScored{Backend: backend, Score: 100}}, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for stream, reply := range map[string]string{events.EventsStream: nodeSubj, events.ScoresStream: events.ScoreSubject(web, backend)} {
		if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, reply, []byte(`{"seq":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 5*time.Second, func() error {
		for stream, want := range map[string]uint64{events.EventsStream: 2, events.ScoresStream: 3} {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			if n := s.CachedInfo().State.Msgs; n != want {
				return fmt.Errorf("%s holds %d messages, want %d: the copy is not stored (yet)", stream, n, want)
			}
		}
		return nil
	})
	h, err := st.NodeHistory(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Records) != 2 || !h.Records[0].Accepted() {
		t.Fatalf("node-1: %+v", h.Records)
	}
	wantRejected(t, h.Records[1], 2, events.ErrCopy)
	// (That the next append to node-1 goes through is
	// TestForgedSequenceHeaderDoesNotFreezeAHistory, a known bug.)
	s, skips := scoresOf(t, st, web)
	if got, _ := s.Lookup(web, backend); got.Value != 100 {
		t.Fatalf("score %d, want 100: a copy of the old score came back", got.Value)
	}
	if len(skips) != 1 || !errors.Is(skips[0], events.ErrCopy) {
		t.Fatalf("skips %v, want the copy", skips)
	}
}

// A message that carries a Nats-Sequence header (a stored copy, above, or
// a raw publish that sets one) must not freeze its history: the head an
// append is conditioned on is the message's real sequence.
//
// This was a bug (events/follow.go directLast), fixed since. A direct get of a
// message that has headers of its own returns them first and the server's
// Nats-Sequence, Nats-Subject and Nats-Time-Stamp after them, and
// directLast takes the first Nats-Sequence (Header.Get): the forged one.
// head() then reports a sequence the history's last message does not
// have, every append conditional on it fails, and Append gives up ("lost
// 25 races"; with ExpectRevision or Head, a ConflictError) for as long as
// the message is the last. A read-only credential does it with one direct
// get aimed at a config subject; taking the last value of each header
// fixes it.
func TestForgedSequenceHeaderDoesNotFreezeAHistory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stray func(t *testing.T, nc *nats.Conn, js jetstream.JetStream)
	}{
		{"a raw publish with the header", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) {
			m := nats.NewMsg(events.ScopeSubject(web, events.KindScaled, testActor))
			m.Header.Set(jetstream.SequenceHeader, "1")
			m.Data = []byte("{}")
			if _, err := js.PublishMsg(testCtx(t), m); err != nil {
				t.Fatal(err)
			}
		}},
		{"a direct get of a score aimed at a config subject", func(t *testing.T, nc *nats.Conn, _ jetstream.JetStream) {
			if err := nc.PublishRequest("$JS.API.DIRECT.GET."+events.ScoresStream+"."+events.ScoreFilter(web), events.ScopeSubject(web, events.KindScaled, testActor), nil); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			st := srv.Store(t)
			ctx := testCtx(t)
			nc := srv.Connect(t)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(ctx, &events.Event{Scope: web, Actor: testActor, Data: &events.BackendScored{Backend: "10.0.0.1:80", Score: 5}}, store.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			tc.stray(t, nc, js)
			natstest.Eventually(t, 5*time.Second, func() error {
				if h := history(t, st, web); len(h.Records) != 2 {
					return fmt.Errorf("web has %d records, want 2", len(h.Records))
				}
				return nil
			})
			h := history(t, st, web)
			wantRejected(t, h.Records[1], 2, events.ErrRejected)
			head, err := st.ScopeHead(ctx, web)
			if err != nil || head != h.Head {
				t.Errorf("ScopeHead %+v (%v), but the history's head is %+v", head, err, h.Head)
			}
			appendAccepted(t, st, scaleOf(web, 2), store.AppendOptions{})
			appendAccepted(t, srv.Store(t), scaleOf(web, 3), store.AppendOptions{ExpectRevision: &[]uint64{3}[0]})
		})
	}
}

// A message that carries a "Status" header is a message like any other:
// every reader sees it at its revision, and it blocks no append.
//
// This was a bug (events/follow.go consume and directLast), fixed since. nats.go's
// push consumer (jetstream Consume) takes every delivered message with a
// Status header for a control message (a heartbeat, flow control, an
// error) and never hands it over, so consume misses it: ScopeHistory waits
// for it until its context ends (or, with a message after it, sees a gap
// in the delivery sequence, retries from the same point, and gives up);
// and directLast reads a stored "Status: 404" as "no message", so head()
// says the scope is empty and every append fails. Anyone who may publish
// on a scope's subjects can make the scope unreadable for every agent and
// the CLI. A real delivery has a $JS.ACK reply subject, whatever its
// headers: telling the two apart by that (subscribing to the deliver
// subject directly), and a real "not found" by its missing Nats-Sequence,
// would fix it.
func TestStatusHeaderDoesNotHideAMessage(t *testing.T) {
	for _, status := range []string{"100", "404", "409"} {
		t.Run(status, func(t *testing.T) {
			srv := natstest.Start(t)
			st := srv.Store(t)
			js := rawJS(t, srv)
			if _, err := st.Append(testCtx(t), deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg(events.ScopeSubject(web, events.KindScaled, testActor))
			m.Header.Set("Status", status)
			m.Data = mustEncode(t, &events.Event{Scope: web, Revision: 2, Actor: testActor, Data: &events.Scaled{Replicas: 2}})
			if _, err := js.PublishMsg(testCtx(t), m); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h, err := st.ScopeHistory(ctx, web, 0)
			if err != nil || len(h.Records) != 2 {
				t.Fatalf("history: %v, %v; want 2 records", h, err)
			}
			head, err := st.ScopeHead(ctx, web)
			if err != nil || head != h.Head {
				t.Fatalf("ScopeHead %+v (%v), history head %+v", head, err, h.Head)
			}
			if ev, err := st.Append(ctx, scaleOf(web, 3), store.AppendOptions{}); err != nil || ev.Revision != 3 {
				t.Fatalf("append after it: %v %v", ev, err)
			}
		})
	}
}
