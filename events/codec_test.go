package events

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleEvents() []*Event {
	web := MustParseScope("acme.prod.web")
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	return []*Event{
		{ID: "1", Scope: web, Revision: 1, Time: at, Actor: "a@b", Data: &Deployed{Spec: Spec{
			Image: "web:1", Replicas: 3, Port: 8080, Env: map[string]string{"A": "1"}, Hosts: []string{"web.example.com", "*.example.com"},
			HealthPath: "/up", Update: UpdateStrategy{Surge: 2, HealthTimeout: Duration(10 * time.Second)}, Restart: "no", MemoryMB: 64, CPUs: 0.5,
			Cache: &CachePolicy{TTL: Duration(time.Minute), MaxBytes: 1 << 20},
		}}},
		{ID: "2", Scope: web, Revision: 2, Time: at, Data: &Deployed{Spec: Spec{Command: []string{"./app", "--port", "8080"}, Replicas: 1}}},
		{ID: "3", Scope: web, Revision: 3, Time: at, Data: &Scaled{Replicas: 0}},
		{ID: "4", Scope: web, Revision: 4, Time: at, Data: &EnvChanged{Set: map[string]string{"MODE": "fast"}, Unset: []string{"OLD"}}},
		{ID: "5", Scope: web, Revision: 5, Time: at, Data: &RolledBack{To: 1}},
		{ID: "6", Scope: web, Revision: 6, Time: at, Data: &Removed{}},
		{ID: "7", Scope: web, Time: at, Data: &BackendScored{Backend: "10.0.0.1:31001", Score: 75}},
		{ID: "8", Node: "node-1", Revision: 1, Time: at, Data: &NodeDrained{Reason: "maintenance"}},
		{ID: "9", Node: "node-1", Revision: 2, Time: at, Data: &NodeUndrained{}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, e := range sampleEvents() {
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("encode %s: %v", e.Data.Kind(), err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		want := *e
		want.Schema, want.Kind = SchemaVersion, e.Data.Kind() // what Encode fills in
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("decode of %s (-encoded +decoded):\n%s", b, diff)
		}
		again, err := Encode(got)
		if err != nil || string(again) != string(b) {
			t.Fatalf("round trip changed the event:\n%s\n%s", b, again)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not json", `nope`, ErrMalformed},
		{"unknown kind", `{"schema":1,"id":"x","kind":"teleported","scope":"acme.prod.web","revision":1,"data":{}}`, ErrUnknownKind},
		{"newer schema", `{"schema":9,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"data":{"replicas":1}}`, ErrSchemaTooNew},
		{"bad scope", `{"schema":1,"id":"x","kind":"scaled","scope":"ACME.prod.web","revision":1,"data":{"replicas":1}}`, ErrMalformed},
		{"invalid payload", `{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"data":{"replicas":-4}}`, ErrMalformed},
		{"no data", `{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1}`, ErrMalformed},
		{"wrong data type", `{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"data":{"replicas":"two"}}`, ErrMalformed},
		{"missing id", `{"schema":1,"kind":"removed","scope":"acme.prod.web","revision":1,"data":{}}`, ErrMalformed},
		{"missing scope", `{"schema":1,"id":"x","kind":"removed","revision":1,"data":{}}`, ErrMalformed},
		{"bad score", `{"schema":1,"id":"x","kind":"backend_scored","scope":"acme.prod.web","data":{"backend":"h:1","score":101}}`, ErrMalformed},
		{"bad backend", `{"schema":1,"id":"x","kind":"backend_scored","scope":"acme.prod.web","data":{"backend":"h_1:99999","score":1}}`, ErrMalformed},
		{"too large", `{"x":"` + strings.Repeat("a", MaxEventSize) + `"}`, ErrEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidateNamesTheField(t *testing.T) {
	web := MustParseScope("acme.prod.web")
	tests := []struct {
		data  Payload
		field string
	}{
		{&Deployed{Spec: Spec{Replicas: 1}}, "image"},
		{&Deployed{Spec: Spec{Image: "x", Replicas: -1}}, "replicas"},
		{&Deployed{Spec: Spec{Image: "x", Port: 70000}}, "port"},
		{&Deployed{Spec: Spec{Image: "x y"}}, "image"},
		{&Deployed{Spec: Spec{Image: "Registry.local/Web:1"}}, "image"},
		{&Deployed{Spec: Spec{Image: "web:1", Secrets: map[string]Secret{"DB": {Key: 1, Sealed: "bad"}}}}, "secret DB"},
		{&Deployed{Spec: Spec{Image: "web:1", Secrets: map[string]Secret{"DB": {Key: 0}}}}, "secret DB key"},
		{&SecretSet{Name: "1DB"}, "secret"},
		{&SecretGranted{Node: "n1", NodeKey: "X"}, "node_key"},
		{&SecretKey{Version: 1, Public: "X", Node: "n1"}, "public"},
		{&Deployed{Spec: Spec{Image: "x", Env: map[string]string{"1A": "x"}}}, "env"},
		{&Deployed{Spec: Spec{Image: "x", Hosts: []string{"Web.Example.com"}}}, "hosts[0]"},
		{&Deployed{Spec: Spec{Image: "x", HealthPath: "up"}}, "health_path"},
		{&Deployed{Spec: Spec{Image: "x", Restart: "sometimes"}}, "restart"},
		{&Scaled{Replicas: 1001}, "replicas"},
		{&EnvChanged{}, "env"},
		{&RolledBack{}, "to"},
		{&BackendScored{Backend: "nohost", Score: 1}, "backend"},
		{&BackendScored{Backend: "h:1", Score: -1}, "score"},
	}
	for _, ok := range []string{"web:V1", "registry.local:5000/web:Release-2", "web@sha256:abc", "localhost:5000/web"} {
		if err := (&Spec{Image: ok, Replicas: 1}).Validate(); err != nil {
			t.Errorf("image %q: %v", ok, err)
		}
	}
	for _, tt := range tests {
		e := &Event{Scope: web, Data: tt.data}
		err := e.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, tt.field) {
			t.Errorf("%T %+v: error %v, want field %q", tt.data, tt.data, err, tt.field)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder: it must never panic, and
// whatever it accepts must be valid and re-encode to something it accepts.
func FuzzDecode(f *testing.F) {
	for _, e := range sampleEvents() {
		b, _ := Encode(e)
		f.Add(b)
	}
	f.Add([]byte(`{"schema":1,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":1,"data":{"replicas":1e9}}`))
	f.Add([]byte(`{"schema":1,"id":"x","kind":"deployed","scope":"a.b.c","revision":1,"data":{"spec":{"command":[""]}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid event: %v", err)
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// Validate only reads: an event without a kind is valid, stays without
// one, and is written with its data's kind.
func TestValidateChangesNothing(t *testing.T) {
	e := &Event{ID: "1", Scope: MustParseScope("acme.prod.web"), Revision: 1, Data: &Scaled{Replicas: 2}}
	before := *e
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if *e != before {
		t.Fatalf("Validate changed the event:\n%s", cmp.Diff(before, *e))
	}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if *e != before {
		t.Fatalf("Encode changed the event:\n%s", cmp.Diff(before, *e))
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Kind != KindScaled {
		t.Fatalf("written with kind %q, want %q", back.Kind, KindScaled)
	}
}
