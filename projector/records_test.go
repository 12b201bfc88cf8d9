package projector_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

var stored0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// wire encodes e as hoist would publish it and returns the stored message:
// on e's own subject, at stream sequence seq, stored at stored0+seq s.
func wire(t *testing.T, e *events.Event, seq uint64) events.Message {
	t.Helper()
	if e.ID == "" {
		e.ID = "id"
	}
	if e.Time.IsZero() {
		e.Time = stored0.Add(time.Duration(seq) * time.Second)
	}
	if e.Kind == "" {
		e.Kind = e.Data.Kind()
	}
	data, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	var subject string
	switch {
	case e.Kind == events.KindBackendScored:
		subject = events.ScoreSubject(e.Scope, e.Data.(*events.BackendScored).Backend)
	case e.Kind.IsNodeKind():
		subject = events.NodeSubject(e.Node, e.Kind, e.Actor)
	default:
		subject = events.ScopeSubject(e.Scope, e.Kind, e.Actor)
	}
	return events.Message{Stream: events.EventsStream, Subject: subject, Sequence: seq, Time: stored0.Add(time.Duration(seq) * time.Second), Data: data}
}

// The fold of records as a Reader numbers them: a rejected record holds
// its revision and changes nothing, and what follows it still applies.
func TestFoldRecords(t *testing.T) {
	rd := events.NewReader()
	var recs []events.Record
	add := func(m events.Message) {
		recs = append(recs, rd.Read(m))
	}
	add(wire(t, &events.Event{Scope: web, Actor: "ci", Revision: 1, Data: deployed("web:1", 3)}, 1))
	// Garbage on web's subject: revision 2, rejected.
	add(events.Message{Subject: events.ScopeSubject(web, events.KindScaled, "ci"), Sequence: 2, Time: stored0, Data: []byte("not json")})
	// A body for another scope on web's subject: revision 3, rejected.
	api := events.MustParseScope("acme.prod.api")
	m := wire(t, &events.Event{Scope: api, Actor: "ci", Revision: 3, Data: &events.Scaled{Replicas: 9}}, 3)
	m.Subject = events.ScopeSubject(web, events.KindScaled, "ci")
	add(m)
	add(wire(t, &events.Event{Scope: web, Actor: "ci", Revision: 4, Data: &events.Scaled{Replicas: 5}}, 4))

	h, skips := projector.Fold(web, recs)
	if st := h.State(); st.Revision != 4 || st.Spec == nil || st.Spec.Replicas != 5 || st.Spec.Image != "web:1" {
		t.Fatalf("state %+v", st)
	}
	if len(skips) != 2 || skips[0].Revision != 2 || skips[1].Revision != 3 {
		t.Fatalf("skips %v, want revisions 2 and 3", skips)
	}
	for _, s := range skips {
		if !errors.Is(s, events.ErrRejected) {
			t.Errorf("skip %v does not wrap the rejection", s)
		}
	}
	if !errors.Is(skips[1], events.ErrDisagrees) {
		t.Errorf("skip %v: want ErrDisagrees", skips[1])
	}
	for rev, want := range map[uint64]int{1: 3, 2: 3, 3: 3, 4: 5} {
		st, err := h.At(rev)
		if err != nil || st.Spec.Replicas != want {
			t.Errorf("At(%d) = %+v, %v; want %d replicas", rev, st.Spec, err, want)
		}
	}
}

func TestTakeSkipsWhatIsNotNext(t *testing.T) {
	first := events.Interpret(wire(t, &events.Event{Scope: web, Actor: "ci", Revision: 1, Data: deployed("web:1", 1)}, 1))
	first.Revision = 1
	tests := []struct {
		name string
		rec  func() events.Record
	}{
		{"another scope", func() events.Record {
			r := events.Interpret(wire(t, &events.Event{Scope: events.MustParseScope("acme.prod.api"), Actor: "ci", Revision: 2, Data: &events.Scaled{Replicas: 2}}, 2))
			r.Revision = 2
			return r
		}},
		{"a node event", func() events.Record {
			r := events.Interpret(wire(t, &events.Event{Node: "node-1", Actor: "ci", Revision: 2, Data: &events.NodeDrained{}}, 2))
			r.Revision = 2
			return r
		}},
		{"a gap", func() events.Record {
			r := events.Interpret(wire(t, &events.Event{Scope: web, Actor: "ci", Revision: 3, Data: &events.Scaled{Replicas: 2}}, 3))
			r.Revision = 3
			return r
		}},
		{"a replay of revision 1", func() events.Record { return first }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := projector.NewHistory(web)
			if err := h.Take(first); err != nil {
				t.Fatal(err)
			}
			var s *projector.Skip
			if err := h.Take(tt.rec()); !errors.As(err, &s) {
				t.Fatalf("Take = %v, want a Skip", err)
			}
			// Nothing at all changed: not even a held revision.
			if h.Revision() != 1 {
				t.Fatalf("revision %d after a skip that is not next, want 1", h.Revision())
			}
		})
	}
}

func scoreRecord(t *testing.T, backend string, v int, seq uint64, dated time.Time) events.Record {
	t.Helper()
	m := wire(t, &events.Event{Scope: web, Time: dated, Data: &events.BackendScored{Backend: backend, Score: v}}, seq)
	return events.Interpret(m)
}

// The latest score is the one stored last, aged by the server's time, not
// by the date in its body.
func TestScoresKeepTheLastStored(t *testing.T) {
	s := projector.NewScores()
	b1, b2 := "10.0.0.1:80", "10.0.0.2:80"
	recs := []events.Record{
		scoreRecord(t, b1, 75, 1, stored0),
		scoreRecord(t, b2, 25, 2, stored0),
		// Stored after, dated before: still the latest.
		scoreRecord(t, b1, 50, 4, stored0.Add(-time.Hour)),
		// Handed over out of order (seq 3 after 4): older, ignored.
		scoreRecord(t, b1, 10, 3, stored0.Add(time.Second)),
	}
	for _, r := range recs {
		if err := s.Take(r); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Lookup(web, b1)
	if got.Value != 50 || got.Sequence != 4 || !got.Time.Equal(stored0.Add(4*time.Second)) {
		t.Fatalf("%s = %+v, want 50 from seq 4 aged by its stored time", b1, got)
	}
	if len(s.Scope(web)) != 2 {
		t.Fatalf("table %v", s.Scope(web))
	}
	// A score dated far in the future is rejected and outranks nothing.
	future := scoreRecord(t, b1, 99, 5, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	if err := s.Take(future); !errors.Is(err, events.ErrFuture) {
		t.Fatalf("future score: %v, want ErrFuture", err)
	}
	if err := s.Take(scoreRecord(t, b1, 30, 6, stored0)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup(web, b1); got.Value != 30 {
		t.Fatalf("after a future-dated score, %s = %d, want the later 30", b1, got.Value)
	}
	// A scope event is no score.
	scale := events.Interpret(wire(t, &events.Event{Scope: web, Actor: "ci", Revision: 1, Data: &events.Scaled{Replicas: 1}}, 7))
	if err := s.Take(scale); err == nil {
		t.Fatal("a scale event was taken as a score")
	}
}
