package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

var (
	web = events.MustParseScope("acme.prod.web")
	api = events.MustParseScope("acme.prod.api")
)

// testActor is the actor of the events the tests append.
const testActor = "test@host"

func deployEvent(image string, replicas int) *events.Event {
	return &events.Event{Scope: web, Actor: testActor, Data: &events.Deployed{Spec: events.Spec{Image: image, Replicas: replicas, Port: 8080}}}
}

func scaleOf(scope events.Scope, n int) *events.Event {
	return &events.Event{Scope: scope, Actor: testActor, Data: &events.Scaled{Replicas: n}}
}

// testCtx bounds a test's NATS calls.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawJS is JetStream on a connection of its own: what a client that goes
// around hoist (a stray script, a hostile credential) publishes with.
func rawJS(t testing.TB, srv *natstest.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// mustEncode is events.Encode for events the test builds whole (ID, time,
// revision): the bodies of raw publishes.
func mustEncode(t testing.TB, e *events.Event) []byte {
	t.Helper()
	if e.Schema == 0 {
		e.Schema = events.SchemaVersion
	}
	if e.ID == "" {
		e.ID = "raw-" + t.Name()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	data, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// publishRaw publishes data on subject around hoist and waits for the ack.
func publishRaw(t testing.TB, js jetstream.JetStream, subject string, data []byte, opts ...jetstream.PublishOpt) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, opts...)
	if err != nil {
		t.Fatalf("raw publish on %s: %v", subject, err)
	}
	return ack
}

// history reads a scope's whole history.
func history(t testing.TB, st *store.Store, sc events.Scope) *store.History {
	t.Helper()
	h, err := st.ScopeHistory(testCtx(t), sc, 0)
	if err != nil {
		t.Fatalf("history of %s: %v", sc, err)
	}
	return h
}

// encodeJSON is the body of a forged report: plain JSON, past validation.
func encodeJSON(v any) ([]byte, error) { return json.Marshal(v) }
