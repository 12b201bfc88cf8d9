package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// Permissions check the subjects a client publishes to, never the reply
// subject it asks the server to answer on. A client that may send any
// request the server answers (every role may ask $JS.API.INFO) can make
// the server publish the answer onto a stream subject it could not publish
// to itself, and the stream stores it. This test pins what such a message
// looks like, because hoist's readers must refuse it: either a JetStream
// API answer (JSON of type io.nats.jetstream.api.v1.*, or a publish ack),
// or a copy of a stored message marked with Nats-Stream and Nats-Sequence
// headers. A verbatim replay of a conditional event onto its own subject is
// refused by the stream, as its expected-sequence header no longer holds.
// A push consumer aimed at a stream subject does not deliver. If this test
// starts failing, the server changed: update docs/auth.md.
func TestRepliesLandInStreams(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	url := srv.ClientURL()
	createStreams(t, url, dir, 1)
	admin := connect(t, url, filepath.Join(dir, adminCreds))
	js, err := jetstream.New(admin.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	event := "hoist.scope.acme.prod.web.deployed.alice"
	for i, img := range []string{"web:1", "web:2"} {
		if _, err := js.Publish(ctx, event, []byte(`{"image":"`+img+`"}`),
			jetstream.WithExpectLastSequenceForSubject(uint64(i), "hoist.scope.acme.prod.web.>"), jetstream.WithMsgID(img)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "hoist.score.acme.prod.web.b1", []byte(`{"score":50}`)); err != nil {
		t.Fatal(err)
	}

	reader := connect(t, url, issue(t, dir, Role{Kind: KindReader, Name: "dash"}))
	into := func(tag string) string { return "hoist.scope.acme.staging.web.removed." + tag }
	send := func(subject, reply string) {
		if err := reader.nc.PublishRequest(subject, reply, nil); err != nil {
			t.Fatal(err)
		}
	}
	send("$JS.API.INFO", into("info"))
	send("$JS.API.DIRECT.GET.HOIST_SCORES.hoist.score.acme.prod.web.b1", into("copy"))
	send("$JS.API.DIRECT.GET.HOIST_EVENTS."+event, event) // the latest, web:2, onto itself
	name := nuid.Next()
	body, _ := json.Marshal(map[string]any{"stream_name": "HOIST_EVENTS", "config": map[string]any{
		"name": name, "deliver_subject": "hoist.score.acme.prod.web.pushed", "filter_subject": "hoist.scope.acme.prod.web.>", "ack_policy": "none"}})
	if m, err := reader.request(fmt.Sprintf("$JS.API.CONSUMER.CREATE.HOIST_EVENTS.%s.hoist.scope.acme.prod.web.>", name), body); err != nil || apiError(m) != nil {
		t.Fatalf("create a consumer delivering into a stream: %v %v", err, m)
	}
	if err := reader.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Read what is stored through a consumer: a direct get would add its
	// own Nats-Stream headers.
	last := func(subject string) (jetstream.Msg, error) {
		stream := "HOIST_EVENTS"
		if strings.HasPrefix(subject, "hoist.score.") {
			stream = "HOIST_SCORES"
		}
		c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy})
		if err != nil {
			return nil, err
		}
		return c.Next(jetstream.FetchMaxWait(time.Second))
	}
	natstest.Eventually(t, 5*time.Second, func() error {
		for _, s := range []string{into("info"), into("copy")} {
			if _, err := last(s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	info, _ := last(into("info"))
	if !strings.Contains(string(info.Data()), `"type":"io.nats.jetstream.api.v1.account_info_response"`) || info.Headers().Get("Nats-Stream") != "" {
		t.Errorf("an API answer stored as %v %q", info.Headers(), info.Data())
	}
	cp, _ := last(into("copy"))
	if cp.Headers().Get("Nats-Stream") != "HOIST_SCORES" || cp.Headers().Get("Nats-Sequence") == "" || string(cp.Data()) != `{"score":50}` {
		t.Errorf("a direct get's answer stored as %v %q", cp.Headers(), cp.Data())
	}

	// The replayed event was refused: the history still ends at web:2, at
	// sequence 2. The push consumer sees no interest on a subject that only
	// a stream listens to, so it delivers nothing.
	c, err := js.PushConsumer(ctx, "HOIST_EVENTS", name)
	if err != nil {
		t.Fatal(err)
	}
	if ci := c.CachedInfo(); ci.PushBound || ci.Delivered.Stream != 0 {
		t.Errorf("the consumer delivering into a stream is active: bound %v, delivered %+v", ci.PushBound, ci.Delivered)
	}
	head, err := last(event)
	if err != nil {
		t.Fatal(err)
	}
	if md, _ := head.Metadata(); md.Sequence.Stream != 2 {
		t.Errorf("the replay of %s was stored: head is sequence %d %q", event, md.Sequence.Stream, head.Data())
	}
	scores, _ := js.Stream(ctx, "HOIST_SCORES")
	if _, err := scores.GetLastMsgForSubject(ctx, "hoist.score.acme.prod.web.pushed"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("a push consumer delivered into a stream: %v", err)
	}
}
