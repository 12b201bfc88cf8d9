package balancer

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hoist-dev/hoist/events"
)

// echoBackend answers WebSockets by echoing each message prefixed with its
// name.
func echoBackend(t *testing.T, name string) *backend {
	return newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(name+":"), msg...)); err != nil {
				return
			}
		}
	})
}

// dialWS opens a WebSocket through the proxy at base with Host host.
func dialWS(t *testing.T, base, host string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{Host: host})
	if err != nil {
		t.Fatalf("dial websocket: %v (response %v)", err, res)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// echo sends msg and returns the reply.
func echo(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, reply, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(reply)
}

func TestWebSocketSurvivesScoreAndMembershipChanges(t *testing.T) {
	fx := newFixture(t, nil)
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	fx.deploy(t, web, events.Spec{Hosts: []string{"web.localhost"}})
	fx.announce(web, "n1", a.addr(), b.addr())

	c := dialWS(t, fx.proxy.URL, "web.localhost")
	first := echo(t, c, "hello")
	name, _, _ := strings.Cut(first, ":")
	serving, other := a, b
	if name == "b" {
		serving, other = b, a
	}
	changes := []func(){
		func() { fx.score(t, web, serving.addr(), 10) },
		func() { fx.score(t, web, serving.addr(), 0) },
		func() { fx.score(t, web, other.addr(), 60) },
		func() { fx.announce(web, "n1", other.addr()) }, // the serving backend is withdrawn
		func() { fx.announce(web, "n1", a.addr(), b.addr()) },
	}
	for i, change := range changes {
		change()
		if got := echo(t, c, "ping"); got != name+":ping" {
			t.Fatalf("after change %d: %q", i+1, got)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
}
