package balancer

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// webBackend answers plain requests with its name and echoes WebSockets.
func webBackend(t *testing.T, name string) *backend {
	return newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, name)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil || c.Write(r.Context(), typ, append([]byte(name+":"), msg...)) != nil {
				return
			}
		}
	})
}

// TestEndToEnd is the acceptance, run the way a user would: events
// in NATS, the balancer on a real port, real backends.
func TestEndToEnd(t *testing.T) {
	srv := natstest.Start(t)
	pub := &publisher{t: t, st: srv.Store(t)}
	b1, b2 := webBackend(t, "B1"), webBackend(t, "B2")
	pub.deploy(web, events.Spec{Hosts: []string{"web.localhost"}})
	pub.announce(web, "static", b1.addr(), b2.addr())

	bal, err := New(testConfig(), srv.Store(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := bal.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- bal.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	if err := bal.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + bal.Addr("http").String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	send := func(n int, host string) (byBody map[string]int) {
		byBody = map[string]int{}
		for range n {
			req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
			req.Host = host
			res, err := client.Do(req)
			if err != nil {
				byBody["error"]++
				continue
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				byBody[fmt.Sprint(res.StatusCode)]++
				continue
			}
			byBody[string(body)]++
		}
		return byBody
	}

	// 1. Scores 75/25: 4,000 requests split 3:1 within 2%.
	pub.score(web, b1.addr(), 75)
	pub.score(web, b2.addr(), 25)
	waitWeight(t, bal, web, b1.addr(), 75)
	waitWeight(t, bal, web, b2.addr(), 25)
	got := send(4000, "web.localhost")
	if share := float64(got["B1"]) / 4000; math.Abs(share-0.75) > 0.02 || got["B1"]+got["B2"] != 4000 {
		t.Fatalf("75/25 split: %v (B1 share %.3f)", got, share)
	}

	// Score 0: B2 gets nothing new.
	pub.score(web, b2.addr(), 0)
	waitWeight(t, bal, web, b2.addr(), 0)
	before := b2.hits.Load()
	if got := send(300, "web.localhost"); got["B1"] != 300 || b2.hits.Load() != before {
		t.Fatalf("B2 at score 0 still served: %v", got)
	}

	// 4. A WebSocket stays open across five score changes.
	ws := dialWS(t, base, "web.localhost")
	first := echo(t, ws, "hi")
	for i, s := range []int{50, 10, 90, 0, 60} {
		pub.score(web, b2.addr(), s)
		waitWeight(t, bal, web, b2.addr(), s)
		if reply := echo(t, ws, fmt.Sprint("m", i)); reply[:3] != first[:3] {
			t.Fatalf("change %d: reply %q from another backend than %q", i, reply, first)
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// 2. Kill B1: at most one failed idempotent request; the rest go to B2.
	b1.CloseClientConnections()
	b1.Close()
	got = send(200, "web.localhost")
	if got["B2"] < 199 || got["B1"] > 0 {
		t.Fatalf("after killing B1: %v", got)
	}

	// 3. Unknown host → 404; both backends gone → 503 with Retry-After.
	if got := send(1, "nope.localhost"); got["404"] != 1 {
		t.Fatalf("unknown host: %v", got)
	}
	b2.CloseClientConnections()
	b2.Close()
	send(1, "web.localhost") // finds B2 dead
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Host = "web.localhost"
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("both backends gone: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}
