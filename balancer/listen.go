package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errReusePortUnsupported: see reusePortSupported.
var errReusePortUnsupported = errors.New("reuse-port is supported on Linux only")

// listener is one bound address and the server on it.
type listener struct {
	name string // ListenerHTTP, ListenerHTTPS or ListenerMetrics
	ln   *onceCloseListener
	srv  *http.Server
	// conns counts the server's open connections (ConnState), so a drain
	// can wait for keep-alive clients to close theirs.
	conns atomic.Int64
}

func (l *listener) trackConns(b *Balancer) func(net.Conn, http.ConnState) {
	return func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			l.conns.Add(1)
			if b.draining.Load() {
				b.drainConns.Add(1)
			}
		case http.StateClosed, http.StateHijacked:
			l.conns.Add(-1)
		}
	}
}

// onceCloseListener lets a drain stop accepting before Shutdown, which
// closes the listener again and would report the second close.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// Listen binds the configured addresses (HTTP, HTTPS with certificates,
// metrics), or takes the sockets passed in Config.Listeners. Run calls it
// (with ReusePort, only once the first table is in use); call it first
// yourself to learn the addresses (port 0 picks a free one) before Run.
func (b *Balancer) Listen() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("balancer is closed")
	}
	if len(b.servers) > 0 {
		return nil
	}
	errLog := slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)
	proxySrv := func() *http.Server {
		return &http.Server{
			Handler:           b.Handler(),
			ReadHeaderTimeout: b.cfg.ReadHeaderTimeout,
			IdleTimeout:       b.cfg.IdleTimeout,
			BaseContext:       func(net.Listener) context.Context { return b.reqCtx },
			ErrorLog:          errLog,
		}
	}
	lc := net.ListenConfig{}
	if b.cfg.ReusePort {
		lc.Control = reusePortControl
		if !migratesQueuedConnections() {
			b.log.Warn("with --reuse-port, connections queued on this balancer's socket when it closes are reset, because net.ipv4.tcp_migrate_req is 0; set it to 1, or restart with --handoff-socket")
		}
	}
	var servers []*listener
	bind := func(name, addr string, srv *http.Server) error {
		l := &listener{name: name, srv: srv}
		srv.ConnState = l.trackConns(b)
		if ln := b.cfg.Listeners[name]; ln != nil {
			l.ln = &onceCloseListener{Listener: ln}
			servers = append(servers, l)
			return nil
		}
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s on %s: %w", name, addr, err)
		}
		l.ln = &onceCloseListener{Listener: ln}
		servers = append(servers, l)
		return nil
	}
	var err error
	if b.cfg.Listen != "" || b.cfg.Listeners[ListenerHTTP] != nil {
		err = bind(ListenerHTTP, b.cfg.Listen, proxySrv())
	}
	if err == nil && b.certs != nil {
		srv := proxySrv()
		srv.TLSConfig = b.TLSConfig()
		err = bind(ListenerHTTPS, b.cfg.TLSListen, srv)
	}
	if err == nil && (b.cfg.MetricsListen != "" || b.cfg.Listeners[ListenerMetrics] != nil) {
		err = bind(ListenerMetrics, b.cfg.MetricsListen, &http.Server{
			Handler: b.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog,
		})
	}
	if err != nil {
		for _, l := range servers {
			l.ln.Close()
		}
		return err
	}
	if b.cfg.HandoffSocket != "" {
		var ls []lendable
		for _, l := range servers {
			ls = append(ls, lendable{name: l.name, ln: l.ln.Listener})
		}
		h, err := serveHandoff(b.cfg.HandoffSocket, ls, func(err error) { b.log.Warn("balancer handoff failed", "err", err) })
		if err != nil {
			for _, l := range servers {
				l.ln.Close()
			}
			return fmt.Errorf("handoff socket %s: %w", b.cfg.HandoffSocket, err)
		}
		b.handoff = h
	}
	b.servers = servers
	return nil
}

// acceptsLate reports whether Run binds and accepts only once the first
// table is in use: when the port is shared with a running balancer
// (ReusePort) or the sockets were passed, queueing connections that would
// otherwise be answered 503 while this one catches up.
func (b *Balancer) acceptsLate() bool {
	return b.cfg.ReusePort || len(b.cfg.Listeners) > 0
}

// Addr returns the bound address of "http", "https" or "metrics", nil if
// that listener is not bound.
func (b *Balancer) Addr(name string) net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.servers {
		if l.name == name {
			return l.ln.Addr()
		}
	}
	return nil
}
