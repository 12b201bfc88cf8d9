package balancer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A drain (Close) loses no request that reached the balancer, in three
// steps:
//
//  1. Stop accepting: close the listeners. A socket that another process
//     holds too (passed by systemd, or handed over to the next balancer)
//     stays open there, with the connections queued on it; a socket of
//     our own resets them (Linux), unless it is in an SO_REUSEPORT group
//     and net.ipv4.tcp_migrate_req=1.
//  2. Keep-alive grace. Every answer now carries "Connection: close", so a
//     client with a kept-alive connection closes it after its next answer.
//     Closing an idle connection ourselves races with a request the client
//     may be sending on it (it gets a reset, and clients replay only
//     idempotent requests), so idle connections are left to their clients
//     for KeepAliveGrace, or until none is open.
//  3. http.Server.Shutdown closes the idle connections left and waits for
//     the active ones until the deadline; Close then cuts what is left,
//     hijacked connections (WebSockets) included.

// drainServers runs the drain above on servers, until deadline.
func (b *Balancer) drainServers(servers []*listener, deadline time.Time) error {
	b.draining.Store(true)
	for _, l := range servers {
		l.ln.Close()
	}
	graceEnd := deadline
	if g := time.Now().Add(b.cfg.KeepAliveGrace); g.Before(graceEnd) {
		graceEnd = g
	}
	for openConns(servers) > 0 && time.Now().Before(graceEnd) {
		time.Sleep(5 * time.Millisecond)
	}
	return shutdownServers(servers, deadline)
}

// openConns counts the servers' open connections.
func openConns(servers []*listener) int64 {
	var n int64
	for _, l := range servers {
		n += l.conns.Load()
	}
	return n
}

// shutdownServers waits for in-flight (non-hijacked) requests until
// deadline, then closes what is left.
func shutdownServers(servers []*listener, deadline time.Time) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, l := range servers {
		wg.Go(func() {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			if err := l.srv.Shutdown(ctx); err != nil {
				l.srv.Close()
				if !errors.Is(err, context.DeadlineExceeded) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("shut down %s: %w", l.name, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
