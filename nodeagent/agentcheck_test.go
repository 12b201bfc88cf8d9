package nodeagent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
)

func TestAnswer(t *testing.T) {
	web, api := scopeWeb, events.MustParseScope("acme.prod.api")
	healthy := func(i int, backend string) checkReplica {
		return checkReplica{Index: i, Backend: backend, Healthy: true, State: "running"}
	}
	sick := func(i int, backend string) checkReplica {
		return checkReplica{Index: i, Backend: backend, Healthy: false, State: "running"}
	}
	serving := checkScope{Scope: web, Phase: events.PhaseConverged,
		Replicas: []checkReplica{healthy(0, "10.0.0.5:31001"), healthy(1, "10.0.0.5:31002"), sick(2, "10.0.0.5:31003")},
		Scores:   map[string]int{"10.0.0.5:31001": 80, "10.0.0.5:31002": 40}}
	failedButServing := checkScope{Scope: web, Phase: events.PhaseFailed, Reason: "replica 0 of acme.prod.web (rev 4) not healthy within 1m0s:\nGET /up: 503",
		Replicas: []checkReplica{healthy(0, "10.0.0.5:31001")}}
	failing := checkScope{Scope: api, Phase: events.PhaseFailed, Reason: "image not found", Replicas: nil}
	starting := checkScope{Scope: api, Phase: events.PhaseProgressing}
	rolling := checkScope{Scope: web, Phase: events.PhaseProgressing, Replicas: []checkReplica{
		sick(0, "10.0.0.5:31009"), healthy(0, "10.0.0.5:31001"), {Index: 0, Canary: true, Backend: "10.0.0.5:31005", Healthy: true, State: "running"}}}

	tests := []struct {
		name    string
		view    checkView
		payload string
		want    string
	}{
		{"node, nothing deployed", checkView{Node: "n1"}, "", "ready up 100%\n"},
		{"node serving", checkView{Node: "n1", Scopes: []checkScope{serving, failing}}, "", "ready up 100%\n"},
		{"node still starting", checkView{Node: "n1", Scopes: []checkScope{starting}}, "", "ready up 100%\n"},
		{"node all failing", checkView{Node: "n1", Scopes: []checkScope{failing}}, "\n", "down #all scopes failing: acme.prod.api: image not found\n"},
		{"node drained", checkView{Node: "n1", Drained: true, Scopes: []checkScope{serving}}, "", "drain\n"},
		{"drained wins for a backend", checkView{Node: "n1", Drained: true, Scopes: []checkScope{serving}}, "10.0.0.5:31001\n", "drain\n"},
		{"unknown payload asks the node", checkView{Node: "n1", Scopes: []checkScope{serving}}, "hello there\n", "ready up 100%\n"},

		{"backend scored", checkView{Node: "n1", Scopes: []checkScope{serving}}, "10.0.0.5:31001\n", "ready up 80%\n"},
		{"backend by port on another address", checkView{Node: "n1", Scopes: []checkScope{serving}}, "192.168.1.9:31002", "ready up 40%\n"},
		{"backend unhealthy", checkView{Node: "n1", Scopes: []checkScope{serving}}, "10.0.0.5:31003\n", "down #replica 2 of acme.prod.web is running and not healthy\n"},
		{"backend unknown", checkView{Node: "n1", Scopes: []checkScope{serving}}, "10.0.0.5:9\n", "down #no replica at 10.0.0.5:9 on node n1\n"},
		{"backend unscored", checkView{Node: "n1", Scopes: []checkScope{failedButServing}}, "10.0.0.5:31001\r\n", "ready up 100%\n"},

		{"scope: mean of healthy scores", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.web\n", "ready up 60%\n"},
		{"scope failed but old replicas serve", checkView{Node: "n1", Scopes: []checkScope{failedButServing}}, "acme.prod.web", "ready up 100%\n"},
		{"scope failed", checkView{Node: "n1", Scopes: []checkScope{failing}}, "acme.prod.api", "down #image not found\n"},
		{"scope starting", checkView{Node: "n1", Scopes: []checkScope{starting}}, "acme.prod.api", "down #acme.prod.api has no replica on this node\n"},
		{"scope not served", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.api", "down #scope acme.prod.api is not served by node n1\n"},
		{"scope removed", checkView{Node: "n1", Scopes: []checkScope{{Scope: web, Phase: events.PhaseRemoved}}}, "acme.prod.web", "down #acme.prod.web is removed\n"},

		{"slot", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.web@n1#1\n", "ready up 40%\n"},
		{"slot mid-rollout: the healthy one of two", checkView{Node: "n1", Scopes: []checkScope{rolling}}, "acme.prod.web@n1#0", "ready up 100%\n"},
		{"canary slot", checkView{Node: "n1", Scopes: []checkScope{rolling}}, "acme.prod.web@n1#c0", "ready up 100%\n"},
		{"slot unhealthy", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.web@n1#2", "down #the replica at slot n1#2 of acme.prod.web is running and not healthy\n"},
		{"slot empty", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.web@n1#7", "down #no replica at slot n1#7 of acme.prod.web\n"},
		{"slot of another node", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.web@n2#0", "down #slot n2#0 is on node n2, not on node n1\n"},
		{"slot malformed", checkView{Node: "n1", Scopes: []checkScope{serving}}, "acme.prod.web@n1", "down #\"acme.prod.web@n1\" is not SCOPE@NODE#INDEX\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := answer(tt.view, tt.payload); got != tt.want {
				t.Errorf("answer(%q) = %q, want %q", tt.payload, got, tt.want)
			}
		})
	}

	long := answer(checkView{Scopes: []checkScope{{Scope: api, Phase: events.PhaseFailed, Reason: strings.Repeat("x", 500)}}}, "acme.prod.api")
	if len(long) > 210 || strings.Count(long, "\n") != 1 || !strings.HasSuffix(long, "...\n") {
		t.Errorf("long reason not cut to one short line: %q", long)
	}
}

// The listener answers at once without a payload, reads one when it comes,
// and never waits longer than payloadWait for one that does not end.
func TestCheckServer(t *testing.T) {
	ln, err := listenCheck("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	view := checkView{Node: "n1", Scopes: []checkScope{{Scope: scopeWeb, Phase: events.PhaseConverged,
		Replicas: []checkReplica{{Index: 0, Backend: "127.0.0.1:31001", Healthy: true, State: "running"}}, Scores: map[string]int{"127.0.0.1:31001": 25}}}}
	cs := &checkServer{ln: ln, view: func() checkView { return view }, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cs.serve(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()

	if got := check(t, ln.Addr(), ""); got != "ready up 100%\n" {
		t.Errorf("no payload: %q", got)
	}
	if got := check(t, ln.Addr(), "127.0.0.1:31001\n"); got != "ready up 25%\n" {
		t.Errorf("backend payload: %q", got)
	}
	// A payload without newline, connection left open: answered after the
	// short deadline, from what arrived.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("acme.prod.web")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "ready up 25%\n" {
		t.Errorf("unterminated payload: %q %v", b, err)
	}
}
