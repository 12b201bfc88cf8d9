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

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// ackDropper is a TCP proxy in front of a NATS server that can lose the
// next JetStream publish acks on their way to the client: the publish is
// stored, and the client never hears of it (a lost ack, as on a flaky
// link or a server that fails over right after storing).
type ackDropper struct {
	ln   net.Listener
	drop atomic.Int32 // acks still to lose
	lost atomic.Int32
	wg   sync.WaitGroup
}

func newAckDropper(t *testing.T, server string) *ackDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackDropper{ln: ln}
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
			if bytes.Contains(body, []byte(`{"stream":"`+events.EventsStream+`","seq":`)) && !bytes.Contains(body, []byte(`"error"`)) {
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
	proxy := newAckDropper(t, srv.Addr().String())
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
	return st, srv.Store(t), proxy
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
			at := 0
			for i, r := range h.Records {
				if r.Event != nil && r.Event.ID == ev.ID {
					at = i + 1
				}
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
