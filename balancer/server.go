package balancer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// Run listens (unless Listen was called), follows the streams and serves
// until ctx ends or a listener fails, then closes the balancer. With
// ReusePort or passed Listeners it binds and accepts only once the first
// table is in use: a socket shared with a running balancer takes
// connections at once, and must not answer them 503 while it catches up.
func (b *Balancer) Run(ctx context.Context) error {
	if !b.acceptsLate() {
		if err := b.Listen(); err != nil {
			return err
		}
	}
	if err := b.Start(ctx); err != nil {
		return errors.Join(err, b.Close())
	}
	if b.acceptsLate() {
		b.log.Info("balancer catching up before it accepts connections")
		if err := b.WaitReady(ctx); err != nil {
			if ctx.Err() != nil {
				return b.Close()
			}
			return errors.Join(err, b.Close())
		}
		if err := b.Listen(); err != nil {
			return errors.Join(err, b.Close())
		}
	}
	b.mu.Lock()
	servers := b.servers
	b.mu.Unlock()
	errc := make(chan error, len(servers))
	// Serve ends when Close closes its listener and server, not with a
	// context: serving is cancelled by Close, and Stop only waits.
	serving := lifecycle.New(context.Background(), b.log, 0)
	for _, l := range servers {
		b.log.Info("balancer listening", "on", l.name, "addr", l.ln.Addr().String())
		serving.Go("serve "+l.name, func(context.Context) {
			var err error
			if l.srv.TLSConfig != nil {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			// A drain closes the listener before Shutdown: not a failure.
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !b.draining.Load() {
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
	closeErr := b.Close()
	return errors.Join(runErr, closeErr, serving.Stop())
}
