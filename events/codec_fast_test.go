package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The fast path must take every event Encode writes (otherwise it buys
// nothing) and return exactly what the general path returns.
func TestDecodeCanonicalTakesEncodedEvents(t *testing.T) {
	for _, e := range append(sampleEvents(), &Event{ID: "u", Scope: MustParseScope("acme.prod.web"), Revision: 7,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Actor: "józef@host", Data: &Scaled{Replicas: 1000}}) {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := decodeCanonical(b)
		if !ok {
			t.Fatalf("fast path declined an encoded event: %s", b)
		}
		slow, err := decodeGeneral(b)
		if err != nil {
			t.Fatalf("general path: %v", err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and general paths differ on %s (-general +fast):\n%s", b, cmp.Diff(slow, fast))
		}
	}
}

func TestDecodeCanonicalDeclines(t *testing.T) {
	const ok = `{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"time":"2026-11-21T10:00:00Z","data":{"replicas":1}}`
	if _, took := decodeCanonical([]byte(ok)); !took {
		t.Fatalf("declined the canonical form %s", ok)
	}
	for _, in := range []string{
		strings.Replace(ok, `"id":"x"`, `"id":"\u0078"`, 1),       // escapes
		strings.Replace(ok, `"schema":1`, `"schema":01`, 1),       // leading zero
		strings.Replace(ok, `"revision":1`, `"revision":1.0`, 1),  // fraction
		strings.Replace(ok, `"replicas":1`, `"replicas":-1`, 1),   // invalid
		strings.Replace(ok, `"replicas":1`, `"replicas":1001`, 1), // invalid
		strings.Replace(ok, `"scope":"acme.prod.web"`, `"scope":"a.b.c.d"`, 1),
		strings.Replace(ok, `"kind":"scaled"`, `"kind":"teleported"`, 1),
		strings.Replace(ok, `"schema":1`, `"schema":2`, 1),
		strings.Replace(ok, `"id":"x",`, `"id":"",`, 1),
		strings.Replace(ok, `}}`, `}} `, 1), // trailing space
		strings.Replace(ok, `"data":{"replicas":1}`, `"data":{"replicas":1},"data":{"replicas":2}`, 1),
		strings.Replace(ok, `{"schema"`, `{"Schema"`, 1),
	} {
		if _, took := decodeCanonical([]byte(in)); took {
			t.Errorf("fast path took non-canonical or invalid input %s", in)
		}
	}
}

// FuzzFastDecode checks that the fast path accepts only what the general
// path accepts, and decodes it to exactly the same event.
func FuzzFastDecode(f *testing.F) {
	for _, e := range sampleEvents() {
		b, _ := Encode(e)
		f.Add(b)
	}
	f.Add([]byte(`{"schema":1,"id":"x","kind":"deployed","scope":"a.b.c","revision":1,"time":"2026-11-21T10:00:00Z","data":{"spec":{"image":"x"}} }`))
	f.Add([]byte(`{"schema":1,"id":"x","kind":"node_drained","node":"n1","revision":3,"time":"2026-11-21T10:00:00+01:00","data":{"reason":"é"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeCanonical(b)
		if !ok {
			return
		}
		slow, err := decodeGeneral(b)
		if err != nil {
			t.Fatalf("fast path accepted what the general path rejects (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and general paths differ on %q (-general +fast):\n%s", b, cmp.Diff(slow, fast))
		}
	})
}

// BenchmarkDecodeGeneral is BenchmarkDecode without the fast path: the
// decoder before it existed, kept for comparison.
func BenchmarkDecodeGeneral(b *testing.B) {
	e := &Event{ID: "0123456789abcdefghijkl", Scope: MustParseScope("acme.prod.web"), Revision: 12345, Time: time.Now(), Actor: "bench@host", Data: &Scaled{Replicas: 3}}
	data, err := Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeGeneral(data); err != nil {
			b.Fatal(err)
		}
	}
}

// appendEnvelope must write exactly what encoding/json writes.
func TestEncodeMatchesGeneral(t *testing.T) {
	evs := append(sampleEvents(),
		&Event{ID: "é<&>\"\\\n", Scope: MustParseScope("acme.prod.web"), Revision: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", -3600)), Actor: "józef <j@h>", Data: &Scaled{Replicas: 1}},
		&Event{ID: "y", Scope: MustParseScope("acme.prod.web"), Revision: 2, Time: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), Data: &Removed{}},
		&Event{ID: "z", Scope: MustParseScope("acme.prod.web"), Revision: 3, Data: &Removed{}},
	)
	for _, e := range evs {
		got, err := Encode(e)
		data, _ := json.Marshal(e.Data)
		ref := *e
		ref.Kind = e.Data.Kind() // what Encode writes for an empty kind
		want, werr := encodeGeneral(&ref, SchemaVersion, data)
		if (err != nil) != (werr != nil) {
			t.Fatalf("Encode: %v, encoding/json: %v", err, werr)
		}
		if string(got) != string(want) {
			t.Fatalf("Encode and encoding/json differ:\n%s\n%s", got, want)
		}
	}
}

// FuzzEncode checks appendEnvelope against encoding/json for arbitrary
// ids, actors, times and revisions.
func FuzzEncode(f *testing.F) {
	f.Add("id", "a@b", int64(1_700_000_000), int64(5), uint64(3))
	f.Add("<&>", "\u2028\xff", int64(-62135596800), int64(0), uint64(0))
	f.Fuzz(func(t *testing.T, id, actor string, sec, nsec int64, rev uint64) {
		e := &Event{ID: id, Actor: actor, Scope: MustParseScope("acme.prod.web"), Revision: rev, Time: time.Unix(sec, nsec), Kind: KindScaled, Data: &Scaled{Replicas: 2}}
		if e.ID == "" || e.Validate() != nil {
			return
		}
		data, _ := json.Marshal(e.Data)
		want, err := encodeGeneral(e, SchemaVersion, data)
		if err != nil {
			return // encoding/json rejects it (a time out of range): Encode must too
		}
		got, err := Encode(e)
		if err != nil && len(want) <= MaxEventSize {
			t.Fatalf("Encode failed where encoding/json did not: %v", err)
		}
		if err == nil && string(got) != string(want) {
			t.Fatalf("Encode and encoding/json differ:\n%s\n%s", got, want)
		}
	})
}
