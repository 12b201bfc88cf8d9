package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

func TestAppendAssignsGaplessRevisions(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)

	for i := 1; i <= 3; i++ {
		ev, err := st.Append(ctx, deployEvent("web:1", i), store.AppendOptions{})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if ev.Revision != uint64(i) {
			t.Fatalf("append %d got revision %d", i, ev.Revision)
		}
	}
	// Another scope and a node event must not disturb web's counter.
	if ev, err := st.Append(ctx, &events.Event{Scope: api, Actor: testActor, Data: &events.Removed{}}, store.AppendOptions{}); err != nil || ev.Revision != 1 {
		t.Fatalf("other scope: rev %v err %v", ev, err)
	}
	if ev, err := st.Append(ctx, &events.Event{Node: "node-1", Actor: testActor, Data: &events.NodeDrained{}}, store.AppendOptions{}); err != nil || ev.Revision != 1 {
		t.Fatalf("node event: %v %v", ev, err)
	}
	read := history(t, st, web)
	if evs := read.Events(); len(evs) != 3 || evs[2].Revision != 3 || len(read.Rejected()) != 0 {
		t.Fatalf("history: %+v", read.Records)
	}
	if read.Head.Revision != 3 || read.Head.Sequence != 3 {
		t.Fatalf("head %+v, want revision 3 at sequence 3", read.Head)
	}
	upTo, err := st.ScopeHistory(ctx, web, 2)
	if err != nil || len(upTo.Events()) != 2 || upTo.Head.Revision != 2 {
		t.Fatalf("history up to 2: %+v, %v", upTo, err)
	}
	scopes, err := st.Scopes(ctx, "")
	if err != nil || len(scopes) != 2 || scopes[0].Scope != api || scopes[1].Scope != web || scopes[1].Revision != 3 {
		t.Fatalf("scopes: %+v %v", scopes, err)
	}
	node, err := st.NodeHistory(ctx, "node-1")
	if err != nil || len(node.Events()) != 1 || node.Head.Revision != 1 {
		t.Fatalf("node history: %+v %v", node, err)
	}
}

func TestExpectRevisionConflict(t *testing.T) {
	st := natstest.Start(t).Store(t)
	ctx := testCtx(t)
	if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, deployEvent("web:2", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	one := uint64(1)
	_, err := st.Append(ctx, scaleOf(web, 2), store.AppendOptions{ExpectRevision: &one})
	var conflict *store.ConflictError
	if !errors.As(err, &conflict) || conflict.Expected != 1 || conflict.Actual != 2 {
		t.Fatalf("want conflict 1 vs 2, got %v", err)
	}
	head, err := st.ScopeHead(ctx, web)
	if err != nil || head.Revision != 2 {
		t.Fatalf("conflicting append was stored: head %+v %v", head, err)
	}
	// A stale Head (the caller read revision 1, decided, and lost) fails too.
	h1, err := st.ScopeHistory(ctx, web, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, scaleOf(web, 2), store.AppendOptions{Head: &h1.Head}); !errors.As(err, &conflict) || conflict.Actual != 2 {
		t.Fatalf("append on a stale head: %v", err)
	}
	two := uint64(2)
	if ev, err := st.Append(ctx, scaleOf(web, 2), store.AppendOptions{ExpectRevision: &two}); err != nil || ev.Revision != 3 {
		t.Fatalf("append expecting the head: %v %v", ev, err)
	}
}

// Two publishers that both read head N and both append conditionally must
// not both win; then 20 unconditional publishers race. All 51 events get
// distinct, gapless revisions.
func TestConcurrentConditionalPublishersNeverBothWin(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	a, b := srv.Store(t), srv.Store(t)
	if _, err := a.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for round := uint64(1); round <= 30; round++ {
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, st := range []*store.Store{a, b} {
			wg.Go(func() {
				expect := round
				_, err := st.Append(ctx, scaleOf(web, int(round)), store.AppendOptions{ExpectRevision: &expect})
				var conflict *store.ConflictError
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.As(err, &conflict):
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d publishers won, want exactly 1", round, wins.Load())
		}
	}
	// Unconditional publishers racing all get stored, with distinct revisions.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs = make(map[uint64]string)
	)
	for range 20 {
		wg.Go(func() {
			ev, err := b.Append(ctx, scaleOf(web, 7), store.AppendOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := revs[ev.Revision]; dup {
				t.Errorf("revision %d returned to %s and %s", ev.Revision, other, ev.ID)
			}
			revs[ev.Revision] = ev.ID
		})
	}
	wg.Wait()
	read := history(t, a, web)
	if len(read.Records) != 51 || len(read.Events()) != 51 {
		t.Fatalf("want 51 accepted events, got %d records, %d rejected", len(read.Records), len(read.Rejected()))
	}
	for i, e := range read.Events() {
		if e.Revision != uint64(i+1) {
			t.Fatalf("event %d has revision %d: revisions have a gap or a duplicate", i, e.Revision)
		}
	}
	// Every racer was told the revision it holds.
	for rev, id := range revs {
		if got := read.Records[rev-1].Event.ID; got != id {
			t.Errorf("revision %d holds %s, but %s was told it", rev, got, id)
		}
	}
}

func TestRetriedPublishIsStoredOnce(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	ev := deployEvent("web:1", 2)
	ev.ID = "fixed-id-1"
	first, err := st.Append(ctx, ev, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A retry after a lost ack reuses the id.
	second, err := st.Append(ctx, ev, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID {
		t.Fatalf("ids differ")
	}
	read := history(t, st, web)
	if len(read.Records) != 1 {
		t.Fatalf("retried publish stored %d times", len(read.Records))
	}
	// Also at the raw level: the same Msg-Id is acked as a duplicate, on
	// the new subject layout.
	ack := publishRaw(t, rawJS(t, srv), events.ScopeSubject(web, events.KindDeployed, testActor), []byte("{}"), jetstream.WithMsgID("fixed-id-1"))
	if !ack.Duplicate {
		t.Fatalf("raw republish: ack %+v", ack)
	}
	if h := history(t, st, web); len(h.Records) != 1 {
		t.Fatalf("raw republish stored: %d records", len(h.Records))
	}
}

// A caller that retries an Append with the same event id (what the Msg-Id
// is for, after an Append that failed on a lost ack) is told where the
// event is: the retry is deduplicated, not numbered on the new head.
// (Before the fix in the working tree it reported revision 2, while the
// history held the event at revision 1 and had no revision 2.)
func TestRetriedAppendReportsTheStoredRevision(t *testing.T) {
	st := natstest.Start(t).Store(t)
	ctx := testCtx(t)
	ev := deployEvent("web:1", 2)
	ev.ID = "fixed-id-2"
	first, err := st.Append(ctx, ev, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, scaleOf(web, 3), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// Retried after another event went on top of it.
	again, err := st.Append(ctx, ev, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := history(t, st, web)
	if again.Revision != first.Revision || h.Head.Revision != 2 {
		t.Errorf("retry reported revision %d; the event is at revision %d and the head is %d", again.Revision, first.Revision, h.Head.Revision)
	}
}

// Msg-Ids are deduplicated across the whole stream, so a message stored in
// another history under an event's id makes the server answer the event's
// append as a duplicate. Append must then not report success: the event is
// in no revision of its scope.
//
// This was a bug (events/store.go Append, the ack.Duplicate branch), fixed since.
// Append reports success (at revision 0) and web's history is empty. Any
// credential that may publish anywhere on HOIST_EVENTS (an agent on its
// node's subjects) can do this to an appender whose next ids it can guess
// (nuid ids of a long-running process are sequential with small random
// steps, and every event body shows one).
func TestAppendIDTakenByAnotherMessage(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	publishRaw(t, rawJS(t, srv), events.NodeSubject("node-9", events.KindNodeDrained, "agent-9"), []byte("junk"), jetstream.WithMsgID("guessed-id"))
	ev := scaleOf(web, 3)
	ev.ID = "guessed-id"
	stored, err := st.Append(testCtx(t), ev, store.AppendOptions{})
	h := history(t, st, web)
	if err == nil && (stored.Revision == 0 || stored.Revision > uint64(len(h.Records)) || h.Records[stored.Revision-1].Event == nil || h.Records[stored.Revision-1].Event.ID != ev.ID) {
		t.Fatalf("append reported success at revision %d; web holds %d records and not the event", stored.Revision, len(h.Records))
	}
}

func TestStateSurvivesServerRestart(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	for i := 1; i <= 5; i++ {
		if _, err := st.Append(ctx, deployEvent("web:1", i), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	// The daemon connection reconnects by itself; appends continue the count.
	var after *events.Event
	natstest.Eventually(t, 20*time.Second, func() error {
		ev, err := st.Append(ctx, deployEvent("web:1", 9), store.AppendOptions{})
		after = ev
		return err
	})
	if after.Revision != 6 {
		t.Fatalf("first append after the restart got revision %d, want 6", after.Revision)
	}
	read := history(t, st, web)
	evs := read.Events()
	if len(evs) != 6 || evs[5].Revision != 6 || evs[4].Data.(*events.Deployed).Spec.Replicas != 5 {
		t.Fatalf("after restart: %d events", len(evs))
	}
	// A fresh connection to the restarted server sees the same history.
	fresh := srv.Store(t)
	again := history(t, fresh, web)
	if len(again.Events()) != 6 || again.Head != read.Head {
		t.Fatalf("fresh reader: %d events, head %+v (was %+v)", len(again.Events()), again.Head, read.Head)
	}
}

// Garbage on a scope's subject is never applied and never fatal.
//
// Changed with the redesign: it used to be skipped outside the history (no
// revision). A revision is now a position, so the garbage takes revision 2
// and is listed as rejected, and the next append lands on revision 3.
func TestGarbageOnTheStreamIsSkipped(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// A kind that is not one, and a body that is not JSON.
	publishRaw(t, rawJS(t, srv), "hoist.scope.acme.prod.web.bogus."+testActor, []byte("not json"))
	read := history(t, st, web)
	if len(read.Events()) != 1 || len(read.Rejected()) != 1 {
		t.Fatalf("want 1 event and 1 rejected, got %d and %d", len(read.Events()), len(read.Rejected()))
	}
	rej := read.Rejected()[0]
	if rej.Revision != 2 || !errors.Is(rej.Err, events.ErrRejected) || rej.Scope != web {
		t.Fatalf("rejected record: %+v", rej)
	}
	ev, err := st.Append(ctx, scaleOf(web, 3), store.AppendOptions{})
	if err != nil || ev.Revision != 3 {
		t.Fatalf("append after garbage: %v %v", ev, err)
	}
	if h := history(t, st, web); !h.Records[2].Accepted() || h.Records[2].Event.ID != ev.ID {
		t.Fatalf("the append after the garbage is not accepted: %+v", h.Records[2])
	}
}

func TestStreamsDenyDeleteAndPurge(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := rawJS(t, srv).Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("purge of the config stream succeeded")
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("delete from the config stream succeeded")
	}
}

// A stray event published around hoist with a far-off revision must not
// move the scope's revision counter past its position, nor block the next
// append.
//
// Changed with the redesign: the stray used to be ignored, so the next
// append got revision 2. A revision is now a position: the stray takes
// revision 2 (rejected: it claims 7), and the next append gets 3.
func TestStrayRevisionDoesNotMoveTheHead(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx := testCtx(t)
	if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	stray := &events.Event{ID: "stray", Scope: web, Revision: 7, Actor: testActor, Data: &events.Scaled{Replicas: 9}}
	publishRaw(t, rawJS(t, srv), events.ScopeSubject(web, events.KindScaled, testActor), mustEncode(t, stray))
	ev, err := st.Append(ctx, scaleOf(web, 2), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Revision != 3 {
		t.Fatalf("next append got revision %d, want 3", ev.Revision)
	}
	read := history(t, st, web)
	if len(read.Records) != 3 || !errors.Is(read.Records[1].Err, events.ErrWrongRevision) || !read.Records[2].Accepted() {
		t.Fatalf("records: %+v", read.Records)
	}
}

// A history's reader stops at the head it was asked for even while
// publishers keep appending.
func TestScopeHistoryUpToWhileAppending(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 5; i++ {
		if _, err := st.Append(ctx, scaleOf(web, i), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, err := st.Append(ctx, scaleOf(web, 1), store.AppendOptions{}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()
	for range 20 {
		h, err := st.ScopeHistory(ctx, web, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Records) != 5 || h.Head.Revision != 5 {
			t.Fatalf("history up to 5: %d records, head %+v", len(h.Records), h.Head)
		}
	}
}

// Fifty publishers on five connections append to one scope at once, with
// no expectation: every one is stored, at a revision of its own, with no
// gap, and each is told the revision that holds its event.
func TestFiftyConcurrentPublishers(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	stores := make([]*store.Store, 5)
	for i := range stores {
		stores[i] = srv.Store(t)
	}
	if _, err := stores[0].Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	got := make([]*events.Event, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ev, err := stores[i%len(stores)].Append(ctx, scaleOf(web, i), store.AppendOptions{})
			if err != nil {
				t.Errorf("publisher %d: %v", i, err)
				return
			}
			got[i] = ev
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	h := history(t, stores[0], web)
	if len(h.Records) != n+1 || len(h.Rejected()) != 0 {
		t.Fatalf("%d records, %d rejected; want %d accepted", len(h.Records), len(h.Rejected()), n+1)
	}
	seen := make(map[uint64]bool)
	for i, ev := range got {
		if seen[ev.Revision] {
			t.Fatalf("revision %d returned twice", ev.Revision)
		}
		seen[ev.Revision] = true
		if rec := h.Records[ev.Revision-1]; rec.Event.ID != ev.ID || rec.Event.Data.(*events.Scaled).Replicas != i {
			t.Fatalf("publisher %d was told revision %d, which holds %s", i, ev.Revision, rec.Event.ID)
		}
	}
}
