package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
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
		if _, err := st.Append(ctx, &events.Event{Scope: sc, Actor: "ci", Data: &events.Deployed{Spec: events.Spec{Image: "app:1", Replicas: 1}}}, events.AppendOptions{}); err != nil {
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
	stored, err := st.Append(ctx, &events.Event{Scope: web, Actor: "ci", Data: &events.Scaled{Replicas: 5}}, events.AppendOptions{})
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
