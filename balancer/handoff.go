package balancer

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// Handoff: a running balancer lends its listening sockets to the next one.
//
// A balancer given Config.HandoffSocket serves, on that Unix socket, a
// duplicate of each of its listening sockets (SCM_RIGHTS) with their
// names. A new balancer started with the same path takes them (TakeOver)
// before it binds anything, catches up with the streams, and only then
// accepts on them. From then on both processes hold one socket per port,
// with one accept queue: when the old one is told to stop (SIGTERM), it
// closes its descriptor, and what was queued stays queued for the new one.
// Nothing is reset, which SO_REUSEPORT cannot promise (a socket that
// leaves its group resets its queue). The new balancer then binds the
// path itself, for the balancer after it.
//
// The path is a Unix socket (0600, the balancer's user), so only that user
// can take the sockets. The protocol is one message per connection:
// the names, newline-separated, with the descriptors in the same order.

// ErrNoPredecessor means no balancer serves the handoff socket: the new
// one binds its addresses itself.
var ErrNoPredecessor = errors.New("no balancer serves the handoff socket")

// handoffTimeout bounds one handoff exchange, both sides.
const handoffTimeout = 5 * time.Second

// handoffServer serves a balancer's listening sockets on a Unix socket.
type handoffServer struct {
	path string
	ln   *net.UnixListener
	fi   os.FileInfo // the socket file we made, so Close removes only ours
	// accept owns the accept loop, which ends when Close closes ln.
	accept *lifecycle.Group
	onErr  func(error)
}

// lendable is what a handoff sends: a name and a socket.
type lendable struct {
	name string
	ln   net.Listener
}

func handoffNames(ls []lendable) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.name
	}
	return strings.Join(names, "\n")
}

// serveHandoff binds path (replacing a predecessor's socket file) and
// lends ls to every balancer that connects, until Close.
func serveHandoff(path string, ls []lendable, onErr func(error)) (*handoffServer, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The next balancer replaces the file: ours must not remove theirs.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	h := &handoffServer{path: path, ln: ln, fi: fi, accept: lifecycle.New(context.Background(), nil, 0), onErr: onErr}
	h.accept.Go("handoff accept", func(context.Context) {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return // closed
			}
			_ = c.SetDeadline(time.Now().Add(handoffTimeout))
			if err := lend(c, ls); err != nil {
				onErr(err)
			}
			c.Close()
		}
	})
	return h, nil
}

// Close stops lending, removes the socket file unless a successor replaced
// it, and waits for the accept loop. Safe to call twice.
func (h *handoffServer) Close() {
	if h == nil {
		return
	}
	if h.ln.Close() == nil {
		if fi, err := os.Stat(h.path); err == nil && os.SameFile(fi, h.fi) {
			os.Remove(h.path)
		}
	}
	if err := h.accept.Stop(); err != nil { // one exchange is bounded by handoffTimeout
		h.onErr(err)
	}
}
