package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// listener is one bound address and the server on it.
type listener struct {
	name string // "http", "https" or "metrics"
	ln   net.Listener
	srv  *http.Server
}

// Listen binds the configured addresses (HTTP, HTTPS with certificates,
// metrics). Run calls it; call it first yourself to learn the addresses
// (port 0 picks a free one) before Run.
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
	var servers []*listener
	bind := func(name, addr string, srv *http.Server) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s on %s: %w", name, addr, err)
		}
		servers = append(servers, &listener{name: name, ln: ln, srv: srv})
		return nil
	}
	var err error
	if b.cfg.Listen != "" {
		err = bind("http", b.cfg.Listen, proxySrv())
	}
	if err == nil && b.certs != nil {
		srv := proxySrv()
		srv.TLSConfig = b.TLSConfig()
		err = bind("https", b.cfg.TLSListen, srv)
	}
	if err == nil && b.cfg.MetricsListen != "" {
		err = bind("metrics", b.cfg.MetricsListen, &http.Server{
			Handler: b.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog,
		})
	}
	if err != nil {
		for _, l := range servers {
			l.ln.Close()
		}
		return err
	}
	b.servers = servers
	return nil
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

// Run listens (unless Listen was called), follows the streams and serves
// until ctx ends or a listener fails, then closes the balancer.
func (b *Balancer) Run(ctx context.Context) error {
	if err := b.Listen(); err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return errors.Join(err, b.Close())
	}
	b.mu.Lock()
	servers := b.servers
	b.mu.Unlock()
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, l := range servers {
		b.log.Info("balancer listening", "on", l.name, "addr", l.ln.Addr().String())
		wg.Go(func() {
			var err error
			if l.srv.TLSConfig != nil {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", l.name, err)
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	case <-b.failed():
		runErr = b.feedErr()
	}
	b.log.Info("balancer shutting down", "drain_timeout", b.cfg.ShutdownTimeout, "in_flight", b.active.Load())
	closeErr := b.Close()
	wg.Wait()
	return errors.Join(runErr, closeErr)
}

// shutdownServers stops accepting and waits for in-flight (non-hijacked)
// requests until deadline, then closes what is left.
func (b *Balancer) shutdownServers(servers []*listener, deadline time.Time) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, l := range servers {
		wg.Go(func() {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			defer l.ln.Close() // in case it was bound but never served
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
