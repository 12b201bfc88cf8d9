package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/secrets"
)

// FuzzInterpret feeds Interpret any subject and body. It must never panic,
// and what it accepts must be consistent:
//   - the record's address is the subject's, and the body agrees with it
//     (scope, node, kind, backend, actor) and is not dated in the future;
//   - an accepted event, encoded again and interpreted on the same subject,
//     is accepted with the same address, kind and content;
//   - a rejected record carries a Rejection and nothing it says;
//   - a fresh Reader numbers a message of a history as revision 1, and
//     accepts it only if it claims revision 1.
//
// web and api are the scopes of the seeded events.
var (
	web = events.MustParseScope("acme.prod.web")
	api = events.MustParseScope("acme.prod.api")
)

func FuzzInterpret(f *testing.F) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	enc := func(e *events.Event) []byte {
		e.Schema, e.Time = events.SchemaVersion, at
		if e.ID == "" {
			e.ID = "seed"
		}
		b, err := events.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	scale := enc(&events.Event{Scope: web, Revision: 1, Actor: "ci", Data: &events.Scaled{Replicas: 2}})
	f.Add(events.ScopeSubject(web, events.KindScaled, "ci"), scale)
	f.Add("hoist.scope.acme.prod.web.scaled", scale)
	f.Add(events.ScopeSubject(web, events.KindDeployed, "ci"), scale)
	f.Add(events.ScopeSubject(api, events.KindScaled, "ci"), scale)
	f.Add(events.ScopeSubject(web, events.KindScaled, "mallory"), scale)
	f.Add("hoist.scope.acme.prod.web.teleported.ci", scale)
	f.Add(events.ScopeSubject(web, events.KindDeployed, "ana@b"), enc(&events.Event{Scope: web, Revision: 1, Actor: "ana@b", Data: &events.Deployed{Spec: events.Spec{
		Image: "web:1", Replicas: 3, Port: 8080, Env: map[string]string{"A": "<&>"}, Hosts: []string{"*.example.com"}, HealthPath: "/up"}}}))
	f.Add(events.ScopeSubject(web, events.KindEnvChanged, "ci"), enc(&events.Event{Scope: web, Revision: 3, Actor: "ci", Data: &events.EnvChanged{Set: map[string]string{"K": "v"}, Unset: []string{"O"}}}))
	f.Add(events.ScopeSubject(web, events.KindRolledBack, "ci"), enc(&events.Event{Scope: web, Revision: 4, Actor: "ci", Data: &events.RolledBack{To: 1}}))
	f.Add(events.ScopeSubject(web, events.KindRemoved, "ci"), enc(&events.Event{Scope: web, Revision: 5, Actor: "ci", Data: &events.Removed{}}))
	drain := enc(&events.Event{Node: "node-1", Revision: 1, Actor: "ops", Data: &events.NodeDrained{Reason: "maintenance"}})
	f.Add(events.NodeSubject("node-1", events.KindNodeDrained, "ops"), drain)
	f.Add(events.NodeSubject("node-2", events.KindNodeDrained, "ops"), drain)
	f.Add("hoist.node.node-1.node_undrained", enc(&events.Event{Node: "node-1", Revision: 2, Data: &events.NodeUndrained{}}))
	score := enc(&events.Event{Scope: web, Data: &events.BackendScored{Backend: "10.0.0.1:8080", Score: 75}})
	f.Add(events.ScoreSubject(web, "10.0.0.1:8080"), score)
	f.Add(events.ScoreSubject(web, "10.0.0.2:8080"), score)
	f.Add(events.ScoreSubject(web, "node-1#0"), enc(&events.Event{Scope: web, Data: &events.BackendScored{Backend: "node-1#0", Score: 30}}))
	f.Add(events.ScoreSubject(web, "node-1#01"), []byte(`{"schema":1,"id":"x","kind":"backend_scored","scope":"acme.prod.web","revision":0,"time":"2026-11-21T10:00:00Z","data":{"backend":"node-1#01","score":30}}`))
	f.Add(events.ScoreSubject(web, "[::1]:80"), enc(&events.Event{Scope: web, Data: &events.BackendScored{Backend: "[::1]:80", Score: 0}}))
	f.Add(events.StatusSubject("node-1", web), js(events.NodeStatus{Node: "node-1", Time: at, Scopes: []events.ScopeStatus{{Scope: web, Desired: 2, Applied: 1, Phase: events.PhaseProgressing}}}))
	f.Add(events.StatusSubject("node-1", web), js(events.NodeStatus{Node: "node-2", Time: at, Scopes: []events.ScopeStatus{{Scope: web}}}))
	f.Add(events.BackendsSubject(web, "node-1"), js(events.BackendsReport{Node: "node-1", Scope: web, Revision: 3, Backends: []string{"10.0.0.1:31001"}, Time: at, Hosts: []string{"web.example.com"}}))
	f.Add(events.ScopeSubject(web, events.KindScaled, "ci"), []byte(`{"schema":2,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"actor":"ci","data":{"replicas":1}}`))
	f.Add(events.ScopeSubject(web, events.KindScaled, "ci"), []byte(`{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"time":"9999-12-31T00:00:00Z","actor":"ci","data":{"replicas":1}}`))
	f.Add(events.ScopeSubject(web, events.KindScaled, "ci"), []byte("not json"))
	f.Add("other.subject", scale)
	// The secret kinds, with keys and boxes that validate.
	nodeKey, _ := secrets.GenerateKey()
	box, _ := secrets.Seal(nodeKey.Public(), []byte("v"))
	pub := nodeKey.Public().String()
	f.Add(events.ScopeSubject(web, events.KindSecretSet, "ci"), enc(&events.Event{Scope: web, Revision: 1, Actor: "ci", Data: &events.SecretSet{Name: "DB", Secret: events.Secret{Key: 1, Sealed: box, File: "/run/secrets/db"}}}))
	f.Add(events.ScopeSubject(web, events.KindSecretRemoved, "ci"), enc(&events.Event{Scope: web, Revision: 1, Actor: "ci", Data: &events.SecretRemoved{Name: "DB"}}))
	f.Add(events.ScopeSubject(web, events.KindSecretRotate, "ci"), enc(&events.Event{Scope: web, Revision: 1, Actor: "ci", Data: &events.SecretRotate{}}))
	f.Add(events.ScopeSubject(web, events.KindSecretGranted, "root"), enc(&events.Event{Scope: web, Revision: 1, Actor: "root", Data: &events.SecretGranted{Node: "node-1", NodeKey: pub, Actor: "agent-1"}}))
	f.Add(events.ScopeSubject(web, events.KindSecretRevoked, "root"), enc(&events.Event{Scope: web, Revision: 1, Actor: "root", Data: &events.SecretRevoked{Node: "node-1"}}))
	f.Add(events.ScopeSubject(web, events.KindSecretKey, "agent-1"), enc(&events.Event{Scope: web, Revision: 1, Actor: "agent-1", Data: &events.SecretKey{Version: 1, Public: pub, Node: "node-1", Seeds: map[string]string{"node-1": box}, Resealed: map[string]string{"DB": box}}}))
	f.Add(events.NodeSubject("node-1", events.KindNodeKey, "agent-1"), enc(&events.Event{Node: "node-1", Revision: 1, Actor: "agent-1", Data: &events.NodeKey{Public: pub}}))

	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		m := events.Message{Stream: events.EventsStream, Subject: subject, Sequence: 1, Time: at, Data: body}
		rec := events.Interpret(m)
		addr, perr := events.ParseSubject(subject)
		if rec.Address != addr {
			t.Fatalf("record address %+v, subject's %+v", rec.Address, addr)
		}
		if !rec.Accepted() {
			var rej *events.Rejection
			if !errors.As(rec.Err, &rej) || !errors.Is(rec.Err, events.ErrRejected) || rej.Subject != subject || rej.Sequence != 1 {
				t.Fatalf("rejection %#v", rec.Err)
			}
			if rec.Event != nil || rec.Status != nil || rec.Backends != nil {
				t.Fatalf("a rejected record says something: %+v", rec)
			}
		} else {
			if perr != nil {
				t.Fatalf("accepted a message on an invalid subject: %v", perr)
			}
			checkAgrees(t, rec, at)
			if rec.Event != nil {
				checkReencodes(t, rec, at)
			}
		}

		// A fresh reader: the message is revision 1 of its history.
		rd := events.NewReader().Read(m)
		if rd.History() == "" {
			if rd.Revision != 0 || rd.Accepted() != rec.Accepted() {
				t.Fatalf("a message outside histories was numbered or judged apart: %+v", rd)
			}
			return
		}
		if rd.Revision != 1 || rd.Duplicate {
			t.Fatalf("first message of %s numbered %d (duplicate %v)", rd.History(), rd.Revision, rd.Duplicate)
		}
		if rd.Accepted() != (rec.Accepted() && rec.Event.Revision == 1) {
			t.Fatalf("reader accepted=%v, Interpret accepted=%v (claims revision %v)", rd.Accepted(), rec.Accepted(), rec.Event)
		}
	})
}

// checkAgrees: an accepted record's body says what its subject says.
func checkAgrees(t *testing.T, rec events.Record, stored time.Time) {
	t.Helper()
	future := func(at time.Time) {
		if at.After(stored.Add(events.MaxClockSkew)) {
			t.Fatalf("accepted a message dated %s, stored %s", at, stored)
		}
	}
	switch rec.Family {
	case events.FamilyScope, events.FamilyNode, events.FamilyScore:
		e := rec.Event
		if e == nil || rec.Status != nil || rec.Backends != nil {
			t.Fatalf("event record %+v", rec)
		}
		if e.Kind != rec.Kind || e.Data == nil || e.Data.Kind() != rec.Kind {
			t.Fatalf("a %s body on a %s subject", e.Kind, rec.Kind)
		}
		if rec.Actor != "" && e.Actor != rec.Actor {
			t.Fatalf("actor %q on a subject of %q", e.Actor, rec.Actor)
		}
		switch rec.Family {
		case events.FamilyScope:
			if e.Scope != rec.Scope || !e.Kind.IsScopeKind() {
				t.Fatalf("a %s event of %s on a subject of %s", e.Kind, e.Scope, rec.Scope)
			}
		case events.FamilyNode:
			if e.Node != rec.Node || !e.Kind.IsNodeKind() {
				t.Fatalf("a %s event of node %s on a subject of node %s", e.Kind, e.Node, rec.Node)
			}
		case events.FamilyScore:
			d, ok := e.Data.(*events.BackendScored)
			if !ok || e.Scope != rec.Scope || d.Backend != rec.Backend {
				t.Fatalf("a score of %v in %s on a subject of %s in %s", e.Data, e.Scope, rec.Backend, rec.Scope)
			}
		}
		future(e.Time)
	case events.FamilyStatus:
		s := rec.Status
		if s == nil || rec.Event != nil || s.Node != rec.Node || len(s.Scopes) != 1 || s.Scopes[0].Scope != rec.Scope {
			t.Fatalf("status %+v on the subject of %s in %s", s, rec.Node, rec.Scope)
		}
		future(s.Time)
	case events.FamilyBackends:
		b := rec.Backends
		if b == nil || rec.Event != nil || b.Node != rec.Node || b.Scope != rec.Scope {
			t.Fatalf("backends %+v on the subject of %s in %s", b, rec.Node, rec.Scope)
		}
		future(b.Time)
	default:
		t.Fatalf("accepted a message of family %v", rec.Family)
	}
}

// checkReencodes: an accepted event means the same once encoded again.
func checkReencodes(t *testing.T, rec events.Record, stored time.Time) {
	t.Helper()
	data, err := events.Encode(rec.Event)
	if errors.Is(err, events.ErrEventTooLarge) {
		// Encoding escapes what a body may carry raw (<, >, & become
		// \u003c…): a body near the limit can encode past it.
		return
	}
	if err != nil {
		t.Fatalf("an accepted event does not encode: %v", err)
	}
	again := events.Interpret(events.Message{Stream: rec.Stream, Subject: rec.Subject, Sequence: rec.Sequence, Time: stored, Data: data})
	if !again.Accepted() {
		t.Fatalf("re-encoded, the event is rejected: %v\n%s", again.Err, data)
	}
	if again.Address != rec.Address || again.Event.Kind != rec.Event.Kind {
		t.Fatalf("re-encoded: %+v %s, was %+v %s", again.Address, again.Event.Kind, rec.Address, rec.Event.Kind)
	}
	// The same content: encoding is a fixed point from here (comparing the
	// events themselves would tell an empty map from a missing one, which
	// mean the same).
	if !rec.Event.Time.Equal(again.Event.Time) {
		t.Fatalf("time %s became %s", rec.Event.Time, again.Event.Time)
	}
	data2, err := events.Encode(again.Event)
	if err != nil || !bytes.Equal(data, data2) {
		t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, data, data2)
	}
}
