package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/api"
	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/nodeagent"
)

// startDevAPI serves the HTTP API and the dashboard inside hoist dev, with
// the agent's and the balancer's metrics on its /metrics and the
// balancer's counters for request rates. On loopback a request without a
// token acts as admin, recorded as the local user (as the CLI's events
// are); elsewhere it needs --api-tokens. It returns the address served
// ("" when off) and a stop that waits for it.
func startDevAPI(c *cli.Context, st *store.Store, agent *nodeagent.Agent, bal *balancer.Balancer, log *slog.Logger) (string, func(), error) {
	addr := c.String("api-listen")
	if addr == "" {
		return "", func() {}, nil
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
			return "", nil, usagef("--api-tokens: %v", err)
		}
		opts.Tokens = t
	}
	if isLoopback(addr) {
		opts.Anonymous = &auth.Role{Kind: auth.KindAdmin, Name: "dev"}
		opts.AnonymousActor = events.ActorName(defaultActor())
	} else if opts.Tokens == nil {
		return "", nil, usagef("--api-listen %s accepts requests from other hosts: give --api-tokens FILE (see 'hoist api token'), or listen on 127.0.0.1", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("api: %w\n  Pick another address with --api-listen, or turn it off with --api-listen ''", err)
	}
	srv, err := api.Open(opts)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := serveAPI(ctx, srv, ln); err != nil {
			log.Error("api stopped", "err", err)
		}
	})
	return ln.Addr().String(), func() {
		cancel()
		wg.Wait()
		srv.Close()
	}, nil
}
