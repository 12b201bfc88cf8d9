package store_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// ackDropper is a TCP proxy in front of a NATS server that can lose the
// next answers to JetStream publishes (acks or errors) on their way to the
// client: the publish is stored, and the client never hears of it (a lost
// ack, as on a flaky link or a server that fails over right after
// storing).
type ackDropper struct {
	ln     net.Listener
	stream string       // whose acks it loses
	drop   atomic.Int32 // answers still to lose
	lost   atomic.Int32
	wg     sync.WaitGroup
}

func newAckDropper(t *testing.T, server, stream string) *ackDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackDropper{ln: ln, stream: stream}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			p.wg.Go(func() { io.Copy(s, c); s.Close() })
			p.wg.Go(func() { p.serverToClient(c, s); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *ackDropper) URL() string { return "nats://" + p.ln.Addr().String() }

// serverToClient copies the server's protocol to the client message by
// message, leaving out the acks it is to lose.
func (p *ackDropper) serverToClient(client, server net.Conn) {
	r := bufio.NewReaderSize(server, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		out := line
		if bytes.HasPrefix(line, []byte("MSG ")) || bytes.HasPrefix(line, []byte("HMSG ")) {
			f := strings.Fields(string(line))
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			body := make([]byte, n+2)
			if _, err := io.ReadFull(r, body); err != nil {
				return
			}
			// An ack, or the error a resend gets: {"error":{…},"stream":…}.
			if bytes.Contains(body, []byte(`"stream":"`+p.stream+`","seq":`)) {
				if p.drop.Add(-1) >= 0 {
					p.lost.Add(1)
					continue
				}
				p.drop.Store(0)
			}
			out = append(line, body...)
		}
		if _, err := client.Write(out); err != nil {
			return
		}
	}
}

// lostAckStore is a Store whose connection goes through an ackDropper,
// with web deployed at revision 1.
func lostAckStore(t *testing.T) (*store.Store, *store.Store, *ackDropper) {
	t.Helper()
	srv := natstest.Start(t)
	st, proxy := ackDropperStore(t, srv, events.EventsStream)
	return st, srv.Store(t), proxy
}

// ackDropperStore is a Store on srv whose connection goes through an
// ackDropper losing acks of stream, with web deployed at revision 1.
func ackDropperStore(t *testing.T, srv *natstest.Server, stream string) (*store.Store, *ackDropper) {
	t.Helper()
	proxy := newAckDropper(t, srv.Addr().String(), stream)
	nc, err := store.Connect(store.ConnectOptions{URL: proxy.URL(), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := testCtx(t)
	st, err := store.Open(ctx, nc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, deployEvent("web:1", 1), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	return st, proxy
}

// storedAt returns the revisions of h that hold the event with id.
func storedAt(h *store.History, id string) []int {
	var at []int
	for i, r := range h.Records {
		if r.Event != nil && r.Event.ID == id {
			at = append(at, i+1)
		}
	}
	return at
}

// An Append whose first ack is lost resends the event with the same
// Msg-Id. Whatever it reports must be true: success at the revision the
// history holds the event at, or an error and nothing stored.
//
// Each case waits out one publish timeout (5 s) for the lost ack.
func TestAppendWithALostAck(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(h events.Head) store.AppendOptions
	}{
		{"unconditional", func(events.Head) store.AppendOptions { return store.AppendOptions{} }},
		// This was a bug (events/store.go Append), fixed since. The resend carries the
		// expectation of the head the first publish was numbered on; the
		// server checks that expectation before the Msg-Id, so the resend
		// of the stored event gets "wrong last sequence", and Append
		// reports a ConflictError ("nothing was published": exit code 3)
		// for an event it stored.
		{"expecting the head", func(h events.Head) store.AppendOptions { return store.AppendOptions{ExpectRevision: &h.Revision} }},
		{"on a read head", func(h events.Head) store.AppendOptions { return store.AppendOptions{Head: &h} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, other, proxy := lostAckStore(t)
			ctx := testCtx(t)
			head, err := other.ScopeHead(ctx, web)
			if err != nil {
				t.Fatal(err)
			}
			ev := scaleOf(web, 2)
			ev.ID = "lost-ack-" + strings.ReplaceAll(tc.name, " ", "-")
			proxy.drop.Store(1)
			t0 := time.Now()
			stored, err := st.Append(ctx, ev, tc.opts(head))
			if proxy.lost.Load() != 1 {
				t.Fatalf("%d acks lost, want 1", proxy.lost.Load())
			}
			t.Logf("append after a lost ack took %s: %v", time.Since(t0).Round(time.Millisecond), err)
			h := history(t, other, web)
			where := storedAt(h, ev.ID)
			if len(where) > 1 {
				t.Fatalf("the event is stored %d times, at revisions %v", len(where), where)
			}
			at := 0
			if len(where) == 1 {
				at = where[0]
			}
			switch {
			case err == nil && (stored.Revision != uint64(at) || !h.Records[at-1].Accepted()):
				t.Fatalf("append reported revision %d; the event is at revision %d (0: nowhere)", stored.Revision, at)
			case err != nil && at != 0:
				var conflict *store.ConflictError
				t.Fatalf("append failed (conflict: %v): %v; but the event is stored, at revision %d", errors.As(err, &conflict), err, at)
			}
		})
	}
}

// The resend loop of a publish (store.publishData) goes on until an ack
// comes back, and each resend carries the event's id as Msg-Id. These
// cases lose more than the first ack, or lose it where the resend is
// answered as a duplicate, and check that the event is stored exactly
// once.
//
// Each lost answer waits out one publish timeout (5 s).
func TestLostAcksStoreTheEventOnce(t *testing.T) {
	// The resend of a scope event is answered "wrong last sequence" (the
	// server checks the expectation before the Msg-Id); losing that
	// answer too makes the loop resend once more.
	t.Run("the ack and the answer to the resend", func(t *testing.T) {
		t.Parallel()
		st, other, proxy := lostAckStore(t)
		ev := scaleOf(web, 2)
		ev.ID = "lost-twice"
		proxy.drop.Store(2)
		stored, err := st.Append(testCtx(t), ev, store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := proxy.lost.Load(); n != 2 {
			t.Fatalf("%d answers lost, want 2: the resend loop did not go round twice", n)
		}
		where := storedAt(history(t, other, web), ev.ID)
		if len(where) != 1 || uint64(where[0]) != stored.Revision {
			t.Fatalf("append reported revision %d; the event is stored at revisions %v", stored.Revision, where)
		}
	})
	// A score carries no expectation, so the server answers its resend
	// as a duplicate of the stored one (the Msg-Id check).
	t.Run("a score", func(t *testing.T) {
		t.Parallel()
		srv := natstest.Start(t)
		st, proxy := ackDropperStore(t, srv, events.ScoresStream)
		ev := &events.Event{Scope: web, Actor: testActor, Data: &events.BackendScored{Backend: "10.0.0.1:8080", Score: 7}}
		ev.ID = "lost-score"
		proxy.drop.Store(1)
		ctx := testCtx(t)
		if _, err := st.Append(ctx, ev, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := proxy.lost.Load(); n != 1 {
			t.Fatalf("%d acks lost, want 1", n)
		}
		s, err := rawJS(t, srv).Stream(ctx, events.ScoresStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.ScoreSubject(web, "10.0.0.1:8080")))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Msgs; n != 1 {
			t.Fatalf("the score is stored %d times, want once", n)
		}
	})
}
