package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/backoff"
)

// daemonCommands run hoist's long-lived parts: server, dev, agent, balancer.
// Each lives in its own file.
func daemonCommands() []*cli.Command {
	return []*cli.Command{
		devCommand(),
		apiCommand(),
		serverCommand(),
		balancerCommand(),
		haproxyCommand(),
		announceCommand(),
		agentCommand(),
		demoBackendCommand(),
	}
}

// openStoreWaiting opens the store, waiting out a server that cannot
// answer yet: a cluster that is still electing its leaders (no quorum), or
// a request that timed out. A daemon started with its cluster (the
// balancer, the API) must not exit for that; agents have a dial loop of
// their own. Other errors (a denied credential, a server too old) end
// it at once.
func openStoreWaiting(ctx context.Context, nc *nats.Conn, log *slog.Logger) (*store.Store, error) {
	pause := backoff.New(250*time.Millisecond, 5*time.Second)
	for {
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, err := store.Open(octx, nc, store.Options{Logger: log})
		cancel()
		transient := errors.Is(err, store.ErrNoQuorum) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
		if err == nil || !transient || ctx.Err() != nil {
			return st, err
		}
		wait := pause.Next()
		log.Warn("NATS cannot serve the streams yet; retrying", "err", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}
