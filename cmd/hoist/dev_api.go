package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/api"
	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
	"github.com/hoist-dev/hoist/nodeagent"
)

// startDevAPI serves the HTTP API and the dashboard inside hoist dev, with
// the agent's and the balancer's metrics on its /metrics and the
// balancer's counters for request rates. On loopback a request without a
// token acts as admin, recorded as the local user (as the CLI's events
// are); elsewhere it needs --api-tokens. It serves in parts, until parts
// is stopped, and returns the address served ("" when off).
func startDevAPI(c *cli.Context, parts *lifecycle.Group, st *store.Store, agent *nodeagent.Agent, bal *balancer.Balancer, log *slog.Logger) (string, error) {
	addr := c.String("api-listen")
	if addr == "" {
		return "", nil
	}
	opts := api.Options{
		Store:        st,
		Traffic:      api.WriterTraffic(bal.WriteMetrics),
		ExtraMetrics: metricsWriters(agent.WriteMetrics, bal.WriteMetrics),
		Version:      versionString(),
		Logger:       log.With("part", "api"),
	}
	if path := c.String("api-tokens"); path != "" {
		t, err := api.OpenTokens(path)
		if err != nil {
			return "", usagef("--api-tokens: %v", err)
		}
		opts.Tokens = t
	}
	if isLoopback(addr) {
		opts.Anonymous = &auth.Role{Kind: auth.KindAdmin, Name: "dev"}
		opts.AnonymousActor = events.ActorName(defaultActor())
	} else if opts.Tokens == nil {
		return "", usagef("--api-listen %s accepts requests from other hosts: give --api-tokens FILE (see 'hoist api token'), or listen on 127.0.0.1", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("api: %w\n  Pick another address with --api-listen, or turn it off with --api-listen ''", err)
	}
	srv, err := api.Open(opts)
	if err != nil {
		ln.Close()
		return "", err
	}
	parts.Go("api", func(ctx context.Context) {
		defer srv.Close()
		if err := serveAPI(ctx, srv, ln); err != nil {
			log.Error("api stopped", "err", err)
		}
	})
	return ln.Addr().String(), nil
}
