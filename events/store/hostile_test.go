package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// A stray message takes its revision, is marked rejected, and the next
// publish goes on top of it and is applied.
func TestStrayMessageHoldsItsRevision(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	raw := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	web := events.MustParseScope("acme.prod.web")
	api := events.MustParseScope("acme.prod.api")
	deploy := func(sc events.Scope) {
		t.Helper()
		if _, err := st.Append(ctx, &events.Event{Scope: sc, Actor: "ci", Data: &events.Deployed{Spec: events.Spec{Image: "app:1", Replicas: 1}}}, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deploy(web)
	deploy(api)
	// A body for acme.prod.api on web's subject, claiming revision 99.
	ev := &events.Event{Schema: 1, ID: "x1", Scope: api, Revision: 99, Time: time.Now(), Actor: "ci", Data: &events.Scaled{Replicas: 3}}
	data, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Publish(events.ScopeSubject(web, events.KindScaled, "ci"), data); err != nil {
		t.Fatal(err)
	}
	raw.Flush()
	natstest.Eventually(t, 5*time.Second, func() error {
		h, err := st.ScopeHead(ctx, web)
		if err != nil || h.Revision != 2 {
			return errors.New("stray message not stored yet")
		}
		return nil
	})
	stored, err := st.Append(ctx, &events.Event{Scope: web, Actor: "ci", Data: &events.Scaled{Replicas: 5}}, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stored.Revision != 3 {
		t.Fatalf("revision %d, want 3", stored.Revision)
	}
	hist, err := st.ScopeHistory(ctx, web, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Records) != 3 || hist.Records[1].Err == nil || !errors.Is(hist.Records[1].Err, events.ErrDisagrees) {
		t.Fatalf("records: %+v", hist.Records)
	}
	h, _ := projector.Fold(web, hist.Records)
	if s := h.State(); s.Revision != 3 || s.Spec.Replicas != 5 {
		t.Fatalf("state %+v", s)
	}
	apiHist, err := st.ScopeHistory(ctx, api, 0)
	if err != nil || len(apiHist.Records) != 1 {
		t.Fatalf("api: %v %v", apiHist, err)
	}
}

// A client may name any subject as the reply to its request, and the
// server answers there: a direct get aimed at a backends subject makes the
// stream store a copy of an older report, which would otherwise read as the
// newest. Readers reject it. (Copies of config events and scores are
// refused by the stream itself: they carry the original's expected-sequence
// or Msg-Id header.)
func TestStoredCopiesAreRejected(t *testing.T) {
	srv := natstest.Start(t)
	st := srv.Store(t)
	raw := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	web := events.MustParseScope("acme.prod.web")
	for _, be := range []string{"10.0.0.1:80", "10.0.0.2:80"} {
		if err := st.PublishBackends(ctx, &events.BackendsReport{Node: "n1", Scope: web, Backends: []string{be}, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// The body form of a direct get: sequence 1, the first report.
	if err := raw.PublishRequest("$JS.API.DIRECT.GET."+events.BackendsStream, events.BackendsSubject(web, "n1"), []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	// Wait until the copy is stored: the third message on the subject.
	var recs []events.Record
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	err := st.Follow(fctx, store.Follow{Stream: events.BackendsStream, Filter: events.BackendsFilter(web)}, func(m events.Message) {
		recs = append(recs, events.Interpret(m))
		if len(recs) == 3 {
			fcancel()
		}
	}, nil)
	if !errors.Is(err, context.Canceled) || len(recs) != 3 || !errors.Is(recs[2].Err, events.ErrCopy) {
		t.Fatalf("%v: records %+v", err, recs)
	}
	reps, err := st.BackendReports(ctx, web)
	if err != nil || len(reps) != 1 || reps[0].Backends[0] != "10.0.0.2:80" {
		t.Fatalf("latest report after a replayed copy: %+v %v", reps, err)
	}
}
