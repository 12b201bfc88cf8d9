package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// stored0 is when the messages of the pure tests were stored.
var stored0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// bodyOf encodes e with the envelope fields a test leaves out filled in:
// an id, and a date one second before stored0.
func bodyOf(t testing.TB, e *events.Event) []byte {
	t.Helper()
	if e.ID == "" {
		e.ID = "id-1"
	}
	if e.Time.IsZero() {
		e.Time = stored0.Add(-time.Second)
	}
	if e.Schema == 0 {
		e.Schema = events.SchemaVersion
	}
	data, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func storedMsg(subject string, seq uint64, data []byte) events.Message {
	return events.Message{Stream: events.EventsStream, Subject: subject, Sequence: seq, Time: stored0, Data: data}
}

func TestInterpret(t *testing.T) {
	webSubj := events.ScopeSubject(web, events.KindScaled, "ci")
	scale := func(mod func(e *events.Event)) []byte {
		e := &events.Event{Scope: web, Revision: 1, Actor: "ci", Data: &events.Scaled{Replicas: 2}}
		if mod != nil {
			mod(e)
		}
		return bodyOf(t, e)
	}
	score := func(sc events.Scope, backend string) []byte {
		return bodyOf(t, &events.Event{Scope: sc, Data: &events.BackendScored{Backend: backend, Score: 50}})
	}
	drain := func(node string) []byte {
		return bodyOf(t, &events.Event{Node: node, Revision: 1, Actor: "ops", Data: &events.NodeDrained{Reason: "x"}})
	}
	status := func(node string, scopes ...events.Scope) []byte {
		st := events.NodeStatus{Node: node, Time: stored0, Interval: events.Duration(time.Second)}
		for _, sc := range scopes {
			st.Scopes = append(st.Scopes, events.ScopeStatus{Scope: sc})
		}
		b, err := encodeJSON(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	backends := func(node string, sc events.Scope, at time.Time) []byte {
		b, err := encodeJSON(events.BackendsReport{Node: node, Scope: sc, Backends: []string{"10.0.0.1:80"}, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	huge := append([]byte(`{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"actor":"ci","data":{"replicas":1},"pad":"`),
		strings.Repeat("x", 900<<10)...)
	huge = append(huge, `"}`...)

	tests := []struct {
		name    string
		subject string
		data    []byte
		want    error  // nil: accepted
		history string // the history the record is counted in
	}{
		{name: "a scope event", subject: webSubj, data: scale(nil), history: "scope acme.prod.web"},
		{name: "a legacy subject takes the body's actor", subject: "hoist.scope.acme.prod.web.scaled", data: scale(func(e *events.Event) { e.Actor = "whoever" }), history: "scope acme.prod.web"},
		{name: "a node event", subject: events.NodeSubject("node-1", events.KindNodeDrained, "ops"), data: drain("node-1"), history: "node node-1"},
		{name: "a score", subject: events.ScoreSubject(web, "10.0.0.1:80"), data: score(web, "10.0.0.1:80")},
		{name: "a status", subject: events.StatusSubject("node-1", web), data: status("node-1", web)},
		{name: "a backends report", subject: events.BackendsSubject(web, "node-1"), data: backends("node-1", web, stored0)},
		{name: "dated just within the skew", subject: webSubj, data: scale(func(e *events.Event) { e.Time = stored0.Add(events.MaxClockSkew) }), history: "scope acme.prod.web"},

		{name: "another scope in the body", subject: webSubj, data: scale(func(e *events.Event) { e.Scope = api }), want: events.ErrDisagrees, history: "scope acme.prod.web"},
		{name: "another kind in the body", subject: events.ScopeSubject(web, events.KindDeployed, "ci"), data: scale(nil), want: events.ErrDisagrees, history: "scope acme.prod.web"},
		{name: "another actor in the body", subject: webSubj, data: scale(func(e *events.Event) { e.Actor = "mallory" }), want: events.ErrDisagrees, history: "scope acme.prod.web"},
		{name: "no actor in the body", subject: webSubj, data: scale(func(e *events.Event) { e.Actor = "" }), want: events.ErrDisagrees, history: "scope acme.prod.web"},
		{name: "another node in the body", subject: events.NodeSubject("node-2", events.KindNodeDrained, "ops"), data: drain("node-1"), want: events.ErrDisagrees, history: "node node-2"},
		{name: "a node event on a scope subject", subject: events.ScopeSubject(web, events.KindNodeDrained, "ops"), data: drain("node-1"), want: events.ErrRejected, history: "scope acme.prod.web"},
		{name: "a scope event on a node subject", subject: events.NodeSubject("node-1", events.KindScaled, "ci"), data: scale(nil), want: events.ErrRejected, history: "node node-1"},
		{name: "another backend in the body", subject: events.ScoreSubject(web, "10.0.0.1:80"), data: score(web, "10.0.0.2:80"), want: events.ErrDisagrees},
		{name: "another scope in a score", subject: events.ScoreSubject(web, "10.0.0.1:80"), data: score(api, "10.0.0.1:80"), want: events.ErrDisagrees},
		{name: "another node's status", subject: events.StatusSubject("node-1", web), data: status("node-2", web), want: events.ErrDisagrees},
		{name: "a status of another scope", subject: events.StatusSubject("node-1", web), data: status("node-1", api), want: events.ErrDisagrees},
		{name: "a status of two scopes", subject: events.StatusSubject("node-1", web), data: status("node-1", web, api), want: events.ErrDisagrees},
		{name: "another node's backends", subject: events.BackendsSubject(web, "node-1"), data: backends("node-2", web, stored0), want: events.ErrDisagrees},
		{name: "backends of another scope", subject: events.BackendsSubject(web, "node-1"), data: backends("node-1", api, stored0), want: events.ErrDisagrees},

		{name: "dated in the future", subject: webSubj, data: scale(func(e *events.Event) { e.Time = stored0.Add(events.MaxClockSkew + time.Second) }), want: events.ErrFuture, history: "scope acme.prod.web"},
		{name: "a score dated 9999", subject: events.ScoreSubject(web, "10.0.0.1:80"), data: bodyOf(t, &events.Event{Scope: web, Time: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), Data: &events.BackendScored{Backend: "10.0.0.1:80", Score: 1}}), want: events.ErrFuture},
		{name: "backends dated in the future", subject: events.BackendsSubject(web, "node-1"), data: backends("node-1", web, stored0.Add(time.Hour)), want: events.ErrFuture},

		{name: "garbage", subject: webSubj, data: []byte("not json"), want: events.ErrMalformed, history: "scope acme.prod.web"},
		{name: "empty", subject: webSubj, data: nil, want: events.ErrMalformed, history: "scope acme.prod.web"},
		{name: "garbage status", subject: events.StatusSubject("node-1", web), data: []byte("{"), want: events.ErrMalformed},
		{name: "a 900 KB payload", subject: webSubj, data: huge, want: events.ErrEventTooLarge, history: "scope acme.prod.web"},
		{name: "a newer schema", subject: webSubj, data: []byte(`{"schema":99,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"actor":"ci","data":{"replicas":1}}`), want: events.ErrSchemaTooNew, history: "scope acme.prod.web"},
		{name: "an unknown kind in the body", subject: webSubj, data: []byte(`{"schema":1,"id":"x","kind":"teleported","scope":"acme.prod.web","revision":1,"actor":"ci","data":{}}`), want: events.ErrUnknownKind, history: "scope acme.prod.web"},
		{name: "an unknown kind on the subject", subject: "hoist.scope.acme.prod.web.teleported.ci", data: scale(nil), want: events.ErrRejected, history: "scope acme.prod.web"},
		{name: "a bad actor token", subject: "hoist.scope.acme.prod.web.scaled.a!b", data: scale(nil), want: events.ErrRejected, history: "scope acme.prod.web"},
		{name: "not a hoist subject", subject: "other.subject", data: scale(nil), want: events.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := events.Interpret(storedMsg(tt.subject, 7, tt.data))
			if rec.History() != tt.history {
				t.Errorf("counted in %q, want %q", rec.History(), tt.history)
			}
			if rec.Revision != 0 || rec.Duplicate {
				t.Errorf("Interpret numbered the record: %+v", rec)
			}
			if rec.Sequence != 7 || rec.Subject != tt.subject {
				t.Errorf("record lost its message: %+v", rec.Message)
			}
			if tt.want == nil {
				if !rec.Accepted() {
					t.Fatalf("rejected: %v", rec.Err)
				}
				if rec.Event == nil && rec.Status == nil && rec.Backends == nil {
					t.Fatal("accepted, but says nothing")
				}
				return
			}
			if rec.Accepted() {
				t.Fatalf("accepted, want %v", tt.want)
			}
			if !errors.Is(rec.Err, tt.want) || !errors.Is(rec.Err, events.ErrRejected) {
				t.Errorf("err %v, want %v", rec.Err, tt.want)
			}
			var rej *events.Rejection
			if !errors.As(rec.Err, &rej) || rej.Sequence != 7 || rej.Subject != tt.subject {
				t.Errorf("err %#v is not this message's Rejection", rec.Err)
			}
			if rec.Event != nil || rec.Status != nil || rec.Backends != nil {
				t.Errorf("a rejected record carries what it says: %+v", rec)
			}
		})
	}
}

func encodeJSON(v any) ([]byte, error) { return json.Marshal(v) }

func TestReaderNumbersEachHistory(t *testing.T) {
	rd := events.NewReader()
	scale := func(sc events.Scope, rev uint64) []byte {
		return bodyOf(t, &events.Event{Scope: sc, Revision: rev, Actor: "ci", Data: &events.Scaled{Replicas: 1}})
	}
	msgs := []struct {
		m    events.Message
		rev  uint64
		want error
	}{
		{storedMsg(events.ScopeSubject(web, events.KindScaled, "ci"), 1, scale(web, 1)), 1, nil},
		{storedMsg(events.ScopeSubject(api, events.KindScaled, "ci"), 2, scale(api, 1)), 1, nil},
		// Garbage takes web's revision 2; the next web event is revision 3.
		{storedMsg(events.ScopeSubject(web, events.KindScaled, "ci"), 3, []byte("garbage")), 2, events.ErrMalformed},
		{storedMsg(events.ScopeSubject(web, events.KindScaled, "ci"), 5, scale(web, 3)), 3, nil},
		// A bad kind token still counts in web's history.
		{storedMsg("hoist.scope.acme.prod.web.bogus.ci", 6, scale(web, 4)), 4, events.ErrRejected},
		{storedMsg(events.ScopeSubject(api, events.KindScaled, "ci"), 8, scale(api, 2)), 2, nil},
		{storedMsg(events.NodeSubject("node-1", events.KindNodeDrained, "ops"), 9, bodyOf(t, &events.Event{Node: "node-1", Revision: 1, Actor: "ops", Data: &events.NodeDrained{}})), 1, nil},
		// A claim of the wrong position is rejected, and holds its own.
		{storedMsg(events.ScopeSubject(web, events.KindScaled, "ci"), 10, scale(web, 99)), 5, events.ErrWrongRevision},
		{storedMsg(events.ScopeSubject(web, events.KindScaled, "ci"), 11, scale(web, 5)), 6, events.ErrWrongRevision},
		{storedMsg(events.ScopeSubject(web, events.KindScaled, "ci"), 12, scale(web, 7)), 7, nil},
		// Reports and scores are in no history.
		{events.Message{Subject: events.ScoreSubject(web, "10.0.0.1:80"), Sequence: 1, Time: stored0, Data: bodyOf(t, &events.Event{Scope: web, Data: &events.BackendScored{Backend: "10.0.0.1:80", Score: 1}})}, 0, nil},
	}
	for i, tt := range msgs {
		rec := rd.Read(tt.m)
		if rec.Duplicate || rec.Revision != tt.rev {
			t.Fatalf("message %d: revision %d (duplicate %v), want %d", i, rec.Revision, rec.Duplicate, tt.rev)
		}
		switch {
		case tt.want == nil && !rec.Accepted():
			t.Fatalf("message %d rejected: %v", i, rec.Err)
		case tt.want != nil && !errors.Is(rec.Err, tt.want):
			t.Fatalf("message %d: err %v, want %v", i, rec.Err, tt.want)
		}
	}
	for key, want := range map[string]events.Head{
		"scope acme.prod.web": {Revision: 7, Sequence: 12},
		"scope acme.prod.api": {Revision: 2, Sequence: 8},
		"node node-1":         {Revision: 1, Sequence: 9},
		"node node-2":         {},
	} {
		if got := rd.Head(key); got != want {
			t.Errorf("Head(%q) = %+v, want %+v", key, got, want)
		}
	}
}

func TestReaderDuplicates(t *testing.T) {
	rd := events.NewReader()
	subj := events.ScopeSubject(web, events.KindScaled, "ci")
	body := func(rev uint64) []byte {
		return bodyOf(t, &events.Event{Scope: web, Revision: rev, Actor: "ci", Data: &events.Scaled{Replicas: int(rev)}})
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if rec := rd.Read(storedMsg(subj, seq*10, body(seq))); rec.Revision != seq || !rec.Accepted() {
			t.Fatalf("seq %d: %+v", seq*10, rec)
		}
	}
	// A consumer that resumed too early redelivers 20 and 30, and a
	// sequence that was never delivered but lies behind the head (25).
	for _, seq := range []uint64{20, 25, 30} {
		rec := rd.Read(storedMsg(subj, seq, body(2)))
		if !rec.Duplicate || rec.Revision != 0 {
			t.Fatalf("replay of seq %d: %+v", seq, rec)
		}
	}
	if h := rd.Head("scope acme.prod.web"); h != (events.Head{Revision: 3, Sequence: 30}) {
		t.Fatalf("head moved on replays: %+v", h)
	}
	if rec := rd.Read(storedMsg(subj, 31, body(4))); rec.Duplicate || rec.Revision != 4 || !rec.Accepted() {
		t.Fatalf("after replays: %+v", rec)
	}
}

func TestReaderRestoreAndForget(t *testing.T) {
	key := "scope acme.prod.web"
	subj := events.ScopeSubject(web, events.KindScaled, "ci")
	body := func(rev uint64) []byte {
		return bodyOf(t, &events.Event{Scope: web, Revision: rev, Actor: "ci", Data: &events.Scaled{Replicas: 1}})
	}
	rd := events.NewReader()
	// From a state file: revision 5 was at sequence 40.
	rd.Restore(key, events.Head{Revision: 5, Sequence: 40})
	if h := rd.Head(key); h != (events.Head{Revision: 5, Sequence: 40}) {
		t.Fatalf("Head after Restore: %+v", h)
	}
	if rec := rd.Read(storedMsg(subj, 40, body(5))); !rec.Duplicate {
		t.Fatalf("the restored head's own message is not a duplicate: %+v", rec)
	}
	if rec := rd.Read(storedMsg(subj, 44, body(6))); rec.Revision != 6 || !rec.Accepted() {
		t.Fatalf("after Restore: %+v", rec)
	}
	// Another history is untouched by web's.
	if h := rd.Head("scope acme.prod.api"); h != (events.Head{}) {
		t.Fatalf("api head %+v", h)
	}
	// Forgotten, the history counts from 1 again: the same message is then
	// revision 1, and its claim of 7 is wrong.
	rd.Forget(key)
	rec := rd.Read(storedMsg(subj, 45, body(7)))
	if rec.Revision != 1 || !errors.Is(rec.Err, events.ErrWrongRevision) {
		t.Fatalf("after Forget: %+v", rec)
	}
}

func TestMergeStatuses(t *testing.T) {
	seq := uint64(0)
	report := func(node string, at time.Duration, sc events.Scope, drained bool) events.Record {
		seq++
		return events.Record{Message: events.Message{Sequence: seq}, Status: &events.NodeStatus{Node: node, Time: stored0.Add(at), Drained: drained,
			Scopes: []events.ScopeStatus{{Scope: sc, Applied: uint64(at / time.Second)}}}}
	}
	got := events.MergeStatuses([]events.Record{
		report("node-2", 1*time.Second, web, false),
		report("node-1", 5*time.Second, web, true),
		report("node-1", 3*time.Second, api, false), // older: node-1's fields stay those of 5s
		{}, // a record that says nothing is left out
		report("node-2", 2*time.Second, web, false), // node-2's later view of web replaces the first
	})
	if len(got) != 2 || got[0].Node != "node-1" || got[1].Node != "node-2" {
		t.Fatalf("merged %+v", got)
	}
	n1 := got[0]
	if !n1.Drained || !n1.Time.Equal(stored0.Add(5*time.Second)) {
		t.Errorf("node-1's fields are not from its latest report: %+v", n1)
	}
	if len(n1.Scopes) != 2 || n1.Scopes[0].Scope != api || n1.Scopes[1].Scope != web || n1.Scopes[0].Applied != 3 || n1.Scopes[1].Applied != 5 {
		t.Errorf("node-1's scopes %+v", n1.Scopes)
	}
	if len(got[1].Scopes) != 1 || got[1].Scopes[0].Applied != 2 {
		t.Errorf("node-2's scopes %+v, want its latest view of web only", got[1].Scopes)
	}
}
