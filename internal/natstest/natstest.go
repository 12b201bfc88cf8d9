// Package natstest runs real embedded NATS servers for tests: random ports,
// temp store directories, JetStream ready before use. It also holds the one
// way hoist's tests wait for an outcome (Eventually, Poll: a deadline, never
// a fixed sleep) and watch a log while it is written (SyncBuffer).
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/events/natsd"
	"github.com/hoist-dev/hoist/events/store"
)

// Server is an embedded test server that can be restarted on the same port
// and store.
type Server struct {
	*natsd.Server
	t       testing.TB
	DataDir string
	Port    int
	// SyncAlways is passed on to the server (see natsd.Config).
	SyncAlways bool
}

// Start runs a JetStream server on a random port with a temp store. It is
// shut down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartSyncAlways is Start with every write fsynced before its ack.
func StartSyncAlways(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, syncAlways bool) *Server {
	t.Helper()
	s := &Server{t: t, DataDir: t.TempDir(), SyncAlways: syncAlways}
	s.start("127.0.0.1:0")
	s.Port = s.Addr().Port
	t.Cleanup(func() { s.Shutdown() })
	return s
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
}

// Backup stops the server, copies its store aside, and starts it again: a
// backup of a stopped server's --data, as docs/operating.md describes.
func (s *Server) Backup() string {
	s.t.Helper()
	s.Shutdown()
	dir := s.t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(s.DataDir)); err != nil {
		s.t.Fatalf("back up the store: %v", err)
	}
	s.start(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
	return dir
}

// Restore stops the server, puts the store of backup in place of its own,
// and starts it again on the same port.
func (s *Server) Restore(backup string) {
	s.t.Helper()
	s.Shutdown()
	if err := os.RemoveAll(s.DataDir); err != nil {
		s.t.Fatal(err)
	}
	if err := os.CopyFS(s.DataDir, os.DirFS(backup)); err != nil {
		s.t.Fatalf("restore the store: %v", err)
	}
	s.start(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
}

func (s *Server) start(listen string) {
	s.t.Helper()
	var err error
	for range 50 { // the old listener may linger for a moment after a restart
		s.Server, err = natsd.Start(natsd.Config{Name: "test", DataDir: s.DataDir, Listen: listen, SyncAlways: s.SyncAlways})
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("start nats: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitJetStream(ctx); err != nil {
		s.t.Fatalf("start nats: %v", err)
	}
}

// URL is the client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Connect opens a client connection closed at the end of the test.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := store.Connect(store.ConnectOptions{URL: s.URL(), Name: t.Name(), Daemon: true})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Store connects and opens the hoist store.
func (s *Server) Store(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, s.Connect(t), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

// Eventually polls cond every 10ms until it holds or the deadline passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, err)
	}
}

// Poll calls cond every 10ms until it returns nil or timeout passes, and
// returns its last error: Eventually for a caller that goes on after a miss.
func Poll(timeout time.Duration, cond func() error) error {
	return PollEvery(timeout, 10*time.Millisecond, cond)
}

// PollEvery is Poll with another interval, for a cond that costs more than
// a look at memory (one that runs a command, say).
func PollEvery(timeout, every time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(every) // the poll interval, not a wait for an outcome
	}
}

// FreePorts reserves n distinct free ports and releases them. A cluster's
// routes must be known before its servers start, so the ports are picked
// here; the kernel does not hand them out again right away.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
