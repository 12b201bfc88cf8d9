package balancer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// Balancer is hoist's reverse proxy. New prepares it; Start follows the
// streams; Run also listens and serves; Close stops everything and waits.
type Balancer struct {
	cfg   Config
	store *store.Store
	log   *slog.Logger

	table     atomic.Pointer[Table]
	ready     chan struct{}
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	attempts  sync.Pool // of *attempt
	pages     errorPages
	certs     *certSet
	// retryAfter is the precomputed Retry-After value.
	retryAfter []string
	// boot is random per start: readers of the canary statistics tell a
	// restart (counters reset) by it.
	boot string

	// Counters that belong to no scope.
	unrouted    codeCounts
	builds      atomic.Uint64
	skipped     [numSources]atomic.Uint64
	active      atomic.Int64 // requests inside ServeHTTP, WebSockets included
	draining    atomic.Bool  // Close began: answers carry Connection: close
	drainConns  atomic.Int64 // connections accepted after the drain began
	buildNanos  atomic.Int64 // duration of the last table build
	tableSwapAt atomic.Int64 // unix nanos of the last swap

	// reqCtx is every served request's base context; cancelling it cuts
	// what a graceful shutdown could not drain (WebSockets).
	reqCtx    context.Context
	cancelReq context.CancelFunc
	// closing is closed when Close begins: held requests are answered.
	closing chan struct{}

	mu      sync.Mutex
	started bool
	// run owns the builder, the cache sweeper and the active checker
	// from Start to Close; the feed owns its readers.
	run      *lifecycle.Group
	feed     *feed
	servers  []*listener
	handoff  *handoffServer
	closeErr error
	closed   bool
}

// New checks cfg and prepares a balancer over store. It starts nothing.
func New(cfg Config, st *store.Store, log *slog.Logger) (*Balancer, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("balancer config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := loadErrorPages(cfg.ErrorPagesDir)
	if err != nil {
		return nil, err
	}
	certs, err := loadCerts(cfg.TLSCerts, log)
	if err != nil {
		return nil, err
	}
	b := &Balancer{
		cfg:        cfg,
		store:      st,
		log:        log,
		ready:      make(chan struct{}),
		closing:    make(chan struct{}),
		pages:      pages,
		certs:      certs,
		retryAfter: []string{strconv.Itoa(max(1, int((cfg.RetryAfter+time.Second-1)/time.Second)))},
		boot:       newBoot(),
	}
	if b.cfg.Name == "" {
		b.cfg.Name = "balancer-" + b.boot[:8]
	}
	b.attempts.New = func() any { return new(attempt) }
	b.transport = newTransport(cfg)
	b.proxy = b.newProxy()
	b.reqCtx, b.cancelReq = context.WithCancel(context.Background())
	return b, nil
}

// Start follows the streams: it starts the three stream readers, the
// builder, the cache sweeper and the active checker. The table is
// published once the streams are caught up; until then requests get 503.
// Start returns without waiting for that: see WaitReady. The readers
// connect in the background (ctx bounds nothing), so a stream the server
// refuses is reported by WaitReady and ends Run, not by Start.
func (b *Balancer) Start(_ context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("balancer is closed")
	}
	if b.started {
		return nil
	}
	if b.store == nil {
		return errors.New("balancer has no event store")
	}
	b.run = lifecycle.New(context.Background(), b.log, 0)
	f := startFeed(b.run.Context(), b.store, b.log)
	b.feed, b.started = f, true
	b.run.Go("builder", func(ctx context.Context) { b.buildLoop(ctx, f) })
	b.run.Go("cache sweeper", b.sweepCaches)
	if b.cfg.ActiveCheckInterval > 0 {
		b.run.Go("active checks", b.activeChecks)
	}
	if b.cfg.StatsInterval > 0 {
		b.run.Go("request statistics", b.publishStats)
	}
	return nil
}

// WaitReady waits until the first table, built from everything the streams
// held at Start, is in use.
// It fails when a stream reader stopped for good: the server refused the
// balancer a stream it needs.
func (b *Balancer) WaitReady(ctx context.Context) error {
	if b.Ready() {
		return nil
	}
	select {
	case <-b.ready:
		return nil
	case <-b.failed():
		return fmt.Errorf("balancer catching up: %w", b.feedErr())
	case <-ctx.Done():
		return fmt.Errorf("balancer catching up: %w", ctx.Err())
	}
}

// failed is closed when a stream reader stopped for good: the server
// refused the balancer a stream. It is nil (never ready) before Start.
func (b *Balancer) failed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.feed == nil {
		return nil
	}
	return b.feed.dead
}

// feedErr says why a stream reader stopped, once failed is closed.
func (b *Balancer) feedErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.feed.err
}

// Ready reports whether the first table is in use.
func (b *Balancer) Ready() bool {
	select {
	case <-b.ready:
		return true
	default:
		return false
	}
}

// Table returns the table in use, nil before catch-up.
func (b *Balancer) Table() *Table { return b.table.Load() }

// Handler is the proxy: it routes by Host and forwards to a backend.
func (b *Balancer) Handler() http.Handler { return http.HandlerFunc(b.serveHTTP) }

// TLSConfig is the TLS configuration with SNI certificate selection
// (tls.go), nil without certificates.
func (b *Balancer) TLSConfig() *tls.Config {
	if b.certs == nil {
		return nil
	}
	return b.certs.config()
}

// publish swaps in a new table, pausing and releasing the scopes' held
// requests around the swap (pause.go).
func (b *Balancer) publish(t *Table) {
	pauseBefore(t)
	old := b.table.Swap(t)
	b.builds.Add(1)
	b.tableSwapAt.Store(time.Now().UnixNano())
	resumeAfter(old, t)
}

// Close stops serving (draining in-flight requests for at most
// ShutdownTimeout, then cutting what is left, WebSockets included), stops
// following the streams and waits for every goroutine. It is safe to call
// twice.
func (b *Balancer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.closeErr
	}
	b.closed = true
	close(b.closing)
	servers, handoff := b.servers, b.handoff
	b.mu.Unlock()
	handoff.Close() // first: a successor must not take sockets being closed
	if len(servers) == 0 {
		for _, ln := range b.cfg.Listeners { // passed, never served
			ln.Close()
		}
	}

	start := time.Now()
	deadline := start.Add(b.cfg.ShutdownTimeout)
	inFlight, conns := b.active.Load(), openConns(servers)
	if len(servers) > 0 {
		b.log.Info("balancer draining", "in_flight", inFlight, "connections", conns,
			"drain_timeout", b.cfg.ShutdownTimeout, "reuse_port", b.cfg.ReusePort)
	}
	err := b.drainServers(servers, deadline)
	b.drainActive(deadline)
	cut := b.active.Load()
	b.cancelReq() // cut WebSockets and anything else still running
	b.drainActive(time.Now().Add(2 * time.Second))
	if len(servers) > 0 {
		level := slog.LevelInfo
		if cut > 0 {
			level = slog.LevelWarn
		}
		b.log.Log(context.Background(), level, "balancer drained", "took", time.Since(start).Round(time.Millisecond).String(),
			"in_flight_at_start", inFlight, "connections_at_start", conns,
			"accepted_while_draining", b.drainConns.Load(), "cut", cut)
	}

	b.mu.Lock()
	run, f := b.run, b.feed
	b.mu.Unlock()
	var stuck []error
	if run != nil {
		// First: its cancel also unblocks the readers' callbacks
		// waiting on the builder.
		stuck = append(stuck, run.Stop())
	}
	if f != nil {
		stuck = append(stuck, f.stop())
	}
	if err := errors.Join(stuck...); err != nil {
		b.log.Error("balancer closed with goroutines still running", "err", err)
	}
	b.transport.CloseIdleConnections()
	b.mu.Lock()
	b.closeErr = err
	b.mu.Unlock()
	return err
}

// drainActive waits until no request is being served, or until deadline.
func (b *Balancer) drainActive(deadline time.Time) {
	for b.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
