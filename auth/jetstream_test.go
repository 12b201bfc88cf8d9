package auth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream works for the HOIST account: admin creates the streams, a
// deployer publishes and reads through an ephemeral push consumer with
// flow control, through nats.go's own push consumer.
func TestJetStreamForDeployer(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	url := srv.ClientURL()
	createStreams(t, url, dir, 1)

	cl := connect(t, url, issue(t, dir, Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}}))
	js, err := jetstream.New(cl.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	const n = 10
	for i := range n {
		if _, err := js.Publish(ctx, "hoist.scope.acme.prod.web.deployed.alice", fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := js.CreatePushConsumer(ctx, "HOIST_EVENTS", jetstream.ConsumerConfig{
		DeliverSubject: cl.nc.NewInbox(),
		FilterSubject:  "hoist.scope.acme.prod.*.>",
		AckPolicy:      jetstream.AckNonePolicy,
		FlowControl:    true,
		IdleHeartbeat:  time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan jetstream.Msg, n)
	cc, err := pc.Consume(func(m jetstream.Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	for i := range n {
		select {
		case m := <-got:
			if want := fmt.Sprintf(`{"n":%d}`, i); string(m.Data()) != want {
				t.Fatalf("message %d: %q", i, m.Data())
			}
		case err := <-cl.errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of %d messages", i, n)
		}
	}
}

// Flow control: once a push consumer has 2 MB in flight it stops until the
// client answers its flow-control request on the request's reply subject,
// which no role may publish to but for one answer (response permissions).
// Raw subscription, so that the test sees every FC request and answers it.
func TestFlowControlAnswered(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	url := srv.ClientURL()
	createStreams(t, url, dir, 1)

	admin := connect(t, url, filepath.Join(dir, adminCreds))
	ajs, _ := jetstream.New(admin.nc)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const n, size = 80, 64 << 10 // 5 MB: past the 2 MB a consumer sends unanswered
	payload := []byte(strings.Repeat("x", size))
	for i := range n {
		if _, err := ajs.Publish(ctx, fmt.Sprintf("hoist.score.acme.prod.web.b%d", i), payload); err != nil {
			t.Fatal(err)
		}
	}

	for _, role := range []Role{
		{Kind: KindReader, Name: "dash"},
		{Kind: KindAgent, Name: "agent-1", Node: "node-1", Scopes: []string{"acme.prod.web"}},
		{Kind: KindBalancer, Name: "lb-1"},
	} {
		t.Run(string(role.Kind), func(t *testing.T) {
			cl := connect(t, url, issue(t, dir, role))
			deliver := cl.nc.NewInbox()
			sub, err := cl.nc.SubscribeSync(deliver)
			if err != nil {
				t.Fatal(err)
			}
			sub.SetPendingLimits(-1, -1)
			filter := "hoist.score.acme.prod.web.>"
			if role.Kind == KindBalancer {
				filter = "hoist.score.>"
			}
			js, _ := jetstream.New(cl.nc)
			if _, err := js.CreatePushConsumer(ctx, "HOIST_SCORES", jetstream.ConsumerConfig{
				DeliverSubject: deliver, FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy,
				FlowControl: true, IdleHeartbeat: time.Second,
			}); err != nil {
				t.Fatal(err)
			}
			data, fcs := 0, 0
			for data < n {
				m, err := sub.NextMsgWithContext(ctx)
				if err != nil {
					t.Fatalf("after %d messages and %d flow-control requests: %v", data, fcs, err)
				}
				select {
				case err := <-cl.errs:
					t.Fatalf("after %d messages: %v", data, err)
				default:
				}
				switch {
				case len(m.Data) == size:
					data++
				case m.Header.Get("Status") == "100" && m.Reply != "": // flow control request
					fcs++
					if err := m.Respond(nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			if fcs == 0 {
				t.Fatalf("%d messages and no flow-control request: the test proves nothing", data)
			}
			// The last answer was allowed: a denied one would have
			// reported its violation by the time a PING comes back.
			if err := cl.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-cl.errs:
				if errors.Is(err, nats.ErrPermissionViolation) {
					t.Fatalf("flow-control answer denied: %v", err)
				}
			default:
			}
			t.Logf("%d messages, %d flow-control requests answered", data, fcs)
		})
	}
}
