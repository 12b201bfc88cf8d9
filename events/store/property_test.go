package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// TestPropertyLogAgrees interleaves hoist's appends (plain, conditional on
// a revision, on a read head, from two publishers with their own caches)
// with raw messages around hoist (every defect of strays, valid events
// numbered right, resends of a Msg-Id, noise in other histories), at
// random. After every step, four readings of web's history must agree:
// ScopeHead, ScopeHistory, projector.Fold of that, and an independent
// Reader fed the stream's messages one by one (with its own incremental
// fold), on the head and on the state at every revision; and every append
// that returned success is accepted at the revision it returned.
//
// HOIST_PROPERTY_SEED replays a run; HOIST_PROPERTY_STEPS makes it longer.
func TestPropertyLogAgrees(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("HOIST_PROPERTY_SEED"), 10, 64); err == nil {
		seed = v
	}
	steps := 200
	if v, err := strconv.Atoi(os.Getenv("HOIST_PROPERTY_STEPS")); err == nil && v > 0 {
		steps = v
	}
	t.Logf("seed %d (HOIST_PROPERTY_SEED=%d replays this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	srv := natstest.Start(t)
	p := &property{
		t:      t,
		rng:    rng,
		stores: []*store.Store{srv.Store(t), srv.Store(t)},
		js:     rawJS(t, srv),
		reader: events.NewReader(),
		fold:   projector.NewHistory(web),
		strays: strays(t),
	}
	ctx := testCtx(t)
	var err error
	if p.stream, err = p.js.Stream(ctx, events.EventsStream); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= steps; i++ {
		p.step = i
		what := p.act(ctx)
		p.check(ctx, what)
		if t.Failed() {
			t.Fatalf("step %d (%s) broke the log; replay with HOIST_PROPERTY_SEED=%d", i, what, seed)
		}
	}
	t.Logf("%d steps: web's head is revision %d, %d of them rejected; %d appends checked", steps, len(p.model), p.rejected(), len(p.appended))
}

// expectation is what the model says about one revision of web.
type expectation struct {
	want error  // nil: accepted
	id   string // an accepted append's or raw event's id
}

type property struct {
	t      *testing.T
	rng    *rand.Rand
	step   int
	stores []*store.Store
	js     jetstream.JetStream
	stream jetstream.Stream
	strays []stray
	big    int // 900 KB strays sent: bounded, every read carries them

	model    []expectation // web's revisions, in order
	appended []*events.Event
	sent     []rawMsg // raw publishes to resend

	reader  *events.Reader
	records []events.Record // web's, as the independent reader numbered them
	fold    *projector.History
	lastSeq uint64
}

type rawMsg struct {
	subject string
	data    []byte
	id      string
}

func (p *property) rejected() int {
	n := 0
	for _, e := range p.model {
		if e.want != nil {
			n++
		}
	}
	return n
}

func (p *property) head() uint64 { return uint64(len(p.model)) }

// payload is a random scope change; some of them the fold skips (a scale
// before any deploy, a rollback past the head), which holds a revision all
// the same.
func (p *property) payload() events.Payload {
	switch p.rng.IntN(6) {
	case 0, 1:
		return &events.Deployed{Spec: events.Spec{Image: fmt.Sprintf("web:%d", p.rng.IntN(5)), Replicas: p.rng.IntN(4), Port: 8080}}
	case 2:
		return &events.Scaled{Replicas: p.rng.IntN(10)}
	case 3:
		return &events.EnvChanged{Set: map[string]string{fmt.Sprintf("K%d", p.rng.IntN(3)): strconv.Itoa(p.step)}}
	case 4:
		return &events.RolledBack{To: 1 + p.rng.Uint64N(p.head()+2)}
	}
	return &events.Removed{}
}

func (p *property) raw(subject string, data []byte) *jetstream.PubAck {
	id := fmt.Sprintf("raw-%d", p.step)
	p.sent = append(p.sent, rawMsg{subject, data, id})
	return publishRaw(p.t, p.js, subject, data, jetstream.WithMsgID(id))
}

// act takes one random step and updates the model; it says what it did.
func (p *property) act(ctx context.Context) string {
	t := p.t
	st := p.stores[p.rng.IntN(len(p.stores))]
	ev := &events.Event{Scope: web, Actor: testActor, Data: p.payload()}
	var conflict *store.ConflictError
	switch k := p.rng.IntN(20); {
	case k < 5: // a plain append
		p.appendOK(ctx, st, ev, store.AppendOptions{})
		return "append"
	case k < 7: // expecting the head the model knows
		head := p.head()
		p.appendOK(ctx, st, ev, store.AppendOptions{ExpectRevision: &head})
		return "append expecting the head"
	case k < 8: // expecting a head that is not
		wrong := p.head() + 1
		if p.head() > 0 && p.rng.IntN(2) == 0 {
			wrong = p.head() - 1
		}
		_, err := st.Append(ctx, ev, store.AppendOptions{ExpectRevision: &wrong})
		if !errors.As(err, &conflict) || conflict.Expected != wrong || conflict.Actual != p.head() {
			t.Errorf("append expecting %d on head %d: %v, want a conflict", wrong, p.head(), err)
		}
		return "append expecting a wrong head"
	case k < 9: // on the head a read shows
		h, err := st.ScopeHistory(ctx, web, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.appendOK(ctx, st, ev, store.AppendOptions{Head: &h.Head})
		return "append on a read head"
	case k < 15: // a stray message on web's subjects
		s := p.strays[p.rng.IntN(len(p.strays))]
		if s.want == events.ErrEventTooLarge && p.big >= 2 {
			s = p.strays[0]
		}
		if s.want == events.ErrEventTooLarge {
			p.big++
		}
		subject, data := s.build(p.head() + 1)
		p.raw(subject, data)
		p.model = append(p.model, expectation{want: s.want})
		return "stray: " + s.name
	case k < 16: // a raw event claiming a revision it does not hold
		claim := p.rng.Uint64N(p.head() + 3)
		if claim == p.head()+1 {
			claim = 0
		}
		e := &events.Event{ID: fmt.Sprintf("claim-%d", p.step), Scope: web, Revision: claim, Actor: testActor, Data: &events.Scaled{Replicas: 1}}
		p.raw(events.ScopeSubject(web, events.KindScaled, testActor), mustEncode(t, e))
		p.model = append(p.model, expectation{want: events.ErrWrongRevision})
		return fmt.Sprintf("raw claim of revision %d at %d", claim, p.head())
	case k < 17: // a raw event that is right in every way: it is accepted
		e := &events.Event{ID: fmt.Sprintf("good-%d", p.step), Scope: web, Revision: p.head() + 1, Actor: testActor, Data: p.payload()}
		p.raw(events.ScopeSubject(web, e.Data.Kind(), testActor), mustEncode(t, e))
		p.model = append(p.model, expectation{id: e.ID})
		return "raw valid event"
	case k < 18: // a resend of an earlier raw message, with its Msg-Id
		if len(p.sent) == 0 {
			return "nothing to resend"
		}
		m := p.sent[p.rng.IntN(len(p.sent))]
		if ack := publishRaw(t, p.js, m.subject, m.data, jetstream.WithMsgID(m.id)); !ack.Duplicate {
			t.Errorf("resend of %s stored again at %d", m.id, ack.Sequence)
		}
		return "resend of " + m.id
	case k < 19: // noise in api's history
		if p.rng.IntN(2) == 0 {
			ev.Scope = api
			if _, err := st.Append(ctx, ev, store.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			return "append to api"
		}
		publishRaw(t, p.js, events.ScopeSubject(api, events.KindScaled, testActor), mustEncode(t, &events.Event{Scope: web, Revision: p.head() + 1, Actor: testActor, Data: &events.Scaled{Replicas: 3}}))
		return "web's body on api's subject"
	default: // noise in a node's history
		publishRaw(t, p.js, events.NodeSubject("node-2", events.KindNodeDrained, testActor), mustEncode(t, &events.Event{Node: "node-1", Revision: 1, Actor: testActor, Data: &events.NodeDrained{}}))
		return "node-1's drain on node-2's subject"
	}
}

func (p *property) appendOK(ctx context.Context, st *store.Store, ev *events.Event, opts store.AppendOptions) {
	stored, err := st.Append(ctx, ev, opts)
	if err != nil {
		p.t.Fatalf("step %d: append: %v", p.step, err)
	}
	if stored.Revision != p.head()+1 {
		p.t.Errorf("append returned revision %d on head %d", stored.Revision, p.head())
	}
	p.model = append(p.model, expectation{id: stored.ID})
	p.appended = append(p.appended, stored)
}

// readOn feeds the independent reader the stream's new messages, fetched
// one by one with raw JetStream.
func (p *property) readOn(ctx context.Context) {
	info, err := p.stream.Info(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	key := web.String()
	for seq := p.lastSeq + 1; seq <= info.State.LastSeq; seq++ {
		m, err := p.stream.GetMsg(ctx, seq)
		if err != nil {
			p.t.Fatalf("get %d: %v", seq, err)
		}
		rec := p.reader.Read(events.Message{Stream: events.EventsStream, Subject: m.Subject, Sequence: m.Sequence, Time: m.Time, Data: m.Data})
		if rec.Duplicate {
			p.t.Errorf("seq %d read as a duplicate", seq)
		}
		if rec.History() == "scope "+key {
			p.records = append(p.records, rec)
			if err := p.fold.Take(rec); err != nil {
				var s *projector.Skip
				if !errors.As(err, &s) || s.Revision != rec.Revision {
					p.t.Errorf("incremental fold of revision %d: %v", rec.Revision, err)
				}
			}
		}
	}
	p.lastSeq = info.State.LastSeq
}

func (p *property) check(ctx context.Context, what string) {
	t := p.t
	p.readOn(ctx)
	head, err := p.stores[0].ScopeHead(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.stores[1].ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	fold, _ := projector.Fold(web, h.Records)
	n := p.head()
	indep := p.reader.Head("scope " + web.String())
	if head.Revision != n || h.Head.Revision != n || uint64(len(h.Records)) != n || fold.Revision() != n ||
		indep.Revision != n || uint64(len(p.records)) != n || p.fold.Revision() != n {
		t.Fatalf("after %s: heads disagree: model %d, ScopeHead %d, history %d (%d records), fold %d, reader %d (%d records), incremental fold %d",
			what, n, head.Revision, h.Head.Revision, len(h.Records), fold.Revision(), indep.Revision, len(p.records), p.fold.Revision())
	}
	if head != h.Head || head != indep {
		t.Errorf("after %s: head sequences disagree: ScopeHead %+v, history %+v, reader %+v", what, head, h.Head, indep)
	}
	for i, rec := range h.Records {
		rev := uint64(i + 1)
		want, other := p.model[i], p.records[i]
		if rec.Revision != rev || other.Revision != rev || rec.Sequence != other.Sequence {
			t.Errorf("revision %d: history has %d at seq %d, reader %d at seq %d", rev, rec.Revision, rec.Sequence, other.Revision, other.Sequence)
		}
		if rec.Accepted() != other.Accepted() || !sameErr(rec.Err, other.Err) {
			t.Errorf("revision %d: history says %v, reader %v", rev, rec.Err, other.Err)
		}
		switch {
		case want.want == nil && !rec.Accepted():
			t.Errorf("revision %d rejected (%v), want accepted", rev, rec.Err)
		case want.want == nil && rec.Event.ID != want.id:
			t.Errorf("revision %d holds %s, want %s", rev, rec.Event.ID, want.id)
		case want.want != nil && !errors.Is(rec.Err, want.want):
			t.Errorf("revision %d: %v, want rejected for %v", rev, rec.Err, want.want)
		}
		a, err1 := fold.At(rev)
		b, err2 := p.fold.At(rev)
		if err1 != nil || err2 != nil || !sameState(a, b) {
			t.Errorf("state at revision %d: fold %+v (%v), incremental fold %+v (%v)", rev, a, err1, b, err2)
		}
	}
	if !sameState(fold.State(), p.fold.State()) {
		t.Errorf("states differ: %+v vs %+v", fold.State(), p.fold.State())
	}
	for _, ev := range p.appended {
		rec := h.Records[ev.Revision-1]
		if !rec.Accepted() || rec.Event.ID != ev.ID {
			t.Errorf("append %s returned revision %d, which holds %v (%v)", ev.ID, ev.Revision, rec.Event, rec.Err)
		}
	}
	if p.step%10 == 0 && n > 0 {
		upTo := 1 + p.rng.Uint64N(n)
		part, err := p.stores[0].ScopeHistory(ctx, web, upTo)
		if err != nil || uint64(len(part.Records)) != upTo || part.Head.Revision != upTo {
			t.Errorf("history up to %d: %v %v", upTo, part, err)
		}
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// sameState compares what a state says, not where its spec lives.
func sameState(a, b projector.State) bool {
	if a.Revision != b.Revision || a.Removed != b.Removed || a.Scope != b.Scope || (a.Spec == nil) != (b.Spec == nil) {
		return false
	}
	return a.Spec == nil || reflect.DeepEqual(*a.Spec, *b.Spec)
}
