package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/docker"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/natsd"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
	"github.com/hoist-dev/hoist/nodeagent"
	"github.com/hoist-dev/hoist/projector"
)

func devCommand() *cli.Command {
	env := func(name string) []string {
		return []string{"HOIST_DEV_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	return &cli.Command{
		Name:     "dev",
		Category: "run",
		Usage:    "run everything in one process: NATS, a node agent, the balancer and a demo",
		Description: `Starts an embedded NATS server with JetStream (its store under --data), one node
agent (Docker when an engine answers, else local processes) and the balancer.
On an empty store it deploys a demo scope, demo.dev.web: 3 replicas behind the
host web.localhost. Other hoist commands in a second terminal reach it with no
settings. The agent serves every scope published here, so 'hoist deploy' works too.

Ctrl-C stops everything. Docker replicas keep running (the next start adopts
them) unless --clean is given; local processes are always stopped.

Example:
   go run ./cmd/hoist dev
   curl -H 'Host: web.localhost' 127.0.0.1:8080
   hoist dev --runtime process --listen 127.0.0.1:8081 --nats-listen 127.0.0.1:4223`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: env("data"), DefaultText: "~/.local/share/hoist/dev", Usage: "data `DIR` for the NATS store and the agent"},
			&cli.StringFlag{Name: "listen", EnvVars: env("listen"), Value: balancer.DefaultListen, Usage: "balancer `ADDR`"},
			&cli.StringFlag{Name: "nats-listen", EnvVars: env("nats-listen"), Value: "127.0.0.1:4222", Usage: "NATS client `ADDR`"},
			&cli.StringFlag{Name: "runtime", EnvVars: env("runtime"), DefaultText: "docker when an engine answers, else process", Usage: "`RUNTIME` of replicas: docker or process"},
			&cli.StringFlag{Name: "agent-check", EnvVars: env("agent-check"), Value: nodeagent.DefaultAgentCheck, Usage: "HAProxy agent-check `ADDR` (empty disables)"},
			&cli.BoolFlag{Name: "clean", EnvVars: env("clean"), Usage: "on exit, also remove the replicas (Docker containers)"},
			&cli.StringFlag{Name: "api-listen", EnvVars: env("api-listen"), Value: DefaultAPIListen, Usage: "`ADDR` of the HTTP API, the dashboard and /metrics (empty disables); on loopback it needs no token"},
			&cli.StringFlag{Name: "api-tokens", EnvVars: env("api-tokens"), Usage: "token `FILE` for the API (see 'hoist api token'); needed when --api-listen is not loopback"},
		},
		Action: runDev,
	}
}

// devNode is the name of hoist dev's agent.
const devNode = "dev"

func runDev(c *cli.Context) error {
	if _, err := args(c, 0, 0, ""); err != nil {
		return err
	}
	switch rt := c.String("runtime"); rt {
	case "", "docker", "process":
	default:
		return usagef("--runtime %q: want docker or process", rt)
	}
	for _, f := range []string{"listen", "nats-listen", "api-listen"} {
		if err := checkListen("--"+f, c.String(f)); err != nil {
			return err
		}
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	dataDir := c.String("data")
	if dataDir == "" {
		dataDir = defaultDataDir("dev")
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return err
	}

	srv, err := natsd.Start(natsd.Config{
		Name: "hoist-dev", DataDir: filepath.Join(dataDir, "nats"), Listen: c.String("nats-listen"),
		Logger: log.With("part", "nats"),
	})
	if err != nil {
		return fmt.Errorf("%w\n  Is another hoist dev or nats-server running? Stop it, or pick another address with --nats-listen", err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	if err := srv.WaitJetStream(ctx); err != nil {
		return err
	}
	url := srv.ClientURL()
	copts := connectOptions(c, "hoist dev", true, log)
	copts.URL = url
	nc, err := store.Connect(copts)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := store.Open(ctx, nc, store.Options{Replicas: 1, Logger: log})
	if err != nil {
		return err
	}

	setup := agentSetup{node: nodeagent.Node{Name: devNode, Advertise: nodeagent.DefaultAdvertise}, dataDir: filepath.Join(dataDir, "agent")}
	rt, rtName, closeRT, err := openRuntime(c, setup, log)
	if err != nil {
		return err
	}
	defer func() { closeRT() }()

	workload, err := prepareDemo(ctx, rtName, dataDir, log)
	if err != nil && rtName == "docker" && c.String("runtime") == "" {
		log.Warn("cannot make the demo image; running replicas as local processes instead", "err", err)
		closeRT()
		if rt, rtName, closeRT, err = openRuntimeNamed(c.Context, "process", setup, log); err != nil {
			return err
		}
		workload, err = prepareDemo(ctx, rtName, dataDir, log)
	}
	if err != nil {
		return err
	}
	if rtName == "process" {
		removeDockerReplicas(ctx, devNode, log)
	}
	scopes, err := ensureDemo(ctx, st, workload, log)
	if err != nil {
		return err
	}
	setup.node.Scopes = scopes
	log.Info("replicas run as "+runtimeWords(rtName), "runtime", rtName)

	agent, err := nodeagent.Open(nodeagent.Options{
		Node:          setup.node,
		ReferenceFile: filepath.Join(setup.dataDir, "reference.json"),
		Runtime:       rt,
		RuntimeName:   rtName,
		Connect:       func(context.Context) (*nats.Conn, error) { return store.Connect(copts) },
		AgentCheck:    c.String("agent-check"),
		Deploy:        deploy.Config{DrainDelay: defaultDrainDelay},
		Version:       versionString(),
		Logger:        log.With("part", "agent"),
	})
	if err != nil {
		return err
	}
	defer func() {
		agent.Close()
		stopReplicas(rt, rtName == "process" || c.Bool("clean"), log)
	}()

	bcfg := balancer.DefaultConfig()
	bcfg.Listen = c.String("listen")
	bal, err := balancer.New(bcfg, st, log.With("part", "balancer"))
	if err != nil {
		return err
	}
	if err := bal.Listen(); err != nil {
		return fmt.Errorf("%w\n  Pick another balancer address with --listen", err)
	}
	// parts owns the balancer, the scope follower and the API: stopped
	// (and waited for) before the agent closes, on every way out.
	parts := lifecycle.New(c.Context, log, 0)
	defer parts.Stop()
	balDone := make(chan error, 1)
	parts.Go("balancer", func(ctx context.Context) { balDone <- bal.Run(ctx) })
	followScopes(parts, st, agent, setup.node, log)

	apiAddr, err := startDevAPI(c, parts, st, agent, bal, log)
	if err != nil {
		return err
	}

	waitDemo(c.Context, agent, log)
	printDevBanner(c, url, addrString(bal.Addr("http")), addrString(agent.AgentCheckAddr()), apiAddr, rtName, dataDir)

	select {
	case <-c.Context.Done():
	case err := <-balDone:
		if err != nil {
			return fmt.Errorf("balancer: %w", err)
		}
	}
	log.Info("stopping hoist dev")
	return nil
}

func runtimeWords(rt string) string {
	if rt == "docker" {
		return "Docker containers"
	}
	return "local processes (no Docker engine answers, or --runtime process)"
}

// ensureDemo deploys the demo on an empty store (conditional on the store
// still being empty, so two starts cannot both deploy it) and returns the
// scopes the agent should serve: all of them.
func ensureDemo(ctx context.Context, st *store.Store, w demoWorkload, log *slog.Logger) ([]events.Scope, error) {
	infos, err := st.Scopes(ctx, "")
	if err != nil {
		return nil, err
	}
	scopes := make([]events.Scope, 0, len(infos)+1)
	for _, in := range infos {
		scopes = append(scopes, in.Scope)
	}
	if len(infos) == 0 {
		none := uint64(0)
		_, err := st.Append(ctx, &events.Event{Scope: demoScope, Actor: "hoist-dev", Data: &events.Deployed{Spec: w.spec()}}, store.AppendOptions{ExpectRevision: &none})
		var conflict *store.ConflictError
		if err != nil && !errors.As(err, &conflict) {
			return nil, fmt.Errorf("deploy the demo: %w", err)
		}
		log.Info("deployed the demo", "scope", demoScope, "replicas", demoReplicas, "host", demoHost)
		return []events.Scope{demoScope}, nil
	}
	// A store first used with the other runtime holds a demo it cannot run.
	hist, err := st.ScopeHistory(ctx, demoScope, 0)
	if err != nil {
		return nil, err
	}
	if len(hist.Records) > 0 {
		h, _ := projector.Fold(demoScope, hist.Records)
		if s := h.State(); s.Exists() && !w.fits(s.Spec) {
			spec := s.Spec.Clone()
			spec.Image, spec.Command = w.image, w.command
			if _, err := st.Append(ctx, &events.Event{Scope: demoScope, Actor: "hoist-dev", Data: &events.Deployed{Spec: *spec}}, store.AppendOptions{Head: &hist.Head}); err != nil {
				return nil, fmt.Errorf("redeploy the demo for this runtime: %w", err)
			}
			log.Info("the runtime changed: redeployed the demo to run here", "scope", demoScope)
		}
	}
	return scopes, nil
}

// followScopes widens the agent to every scope published while hoist dev
// runs, so `hoist deploy acme.prod.web …` in a second terminal just works.
// It runs in parts until parts is stopped.
func followScopes(parts *lifecycle.Group, st *store.Store, agent *nodeagent.Agent, node nodeagent.Node, log *slog.Logger) {
	served := slices.Clone(node.Scopes)
	serve := func(m events.Message) {
		a, _ := events.ParseSubject(m.Subject)
		if a.Family != events.FamilyScope || slices.Contains(served, a.Scope) {
			return
		}
		served = append(served, a.Scope)
		n := node
		n.Scopes = slices.Clone(served)
		slices.SortFunc(n.Scopes, func(a, b events.Scope) int { return strings.Compare(a.String(), b.String()) })
		if err := agent.Reload(n); err != nil {
			log.Error("serve new scope", "scope", a.Scope, "err", err)
			return
		}
		log.Info("now serving a new scope", "scope", a.Scope)
	}
	parts.Go("follow new scopes", func(ctx context.Context) {
		for {
			err := st.Follow(ctx, store.Follow{Stream: events.EventsStream, Filter: events.AllScopesFilter}, serve, nil)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, store.ErrDiverged):
				log.Warn("the stream no longer holds what hoist dev read (restored?); reading it again", "err", err)
				continue
			case err != nil:
				log.Warn("cannot follow new scopes; restart hoist dev to serve them", "err", err)
			}
			return
		}
	})
}

// waitDemo waits (bounded) until the demo runs healthy, so the banner's
// curl works the moment it is printed.
func waitDemo(ctx context.Context, agent *nodeagent.Agent, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, s := range agent.Status().Scopes {
			if s.Scope != demoScope {
				continue
			}
			if s.Phase == events.PhaseConverged || s.Phase == events.PhaseRemoved {
				return
			}
			if s.Phase == events.PhaseFailed {
				log.Warn("the demo is failing", "err", s.Error)
				return
			}
		}
		select {
		case <-ctx.Done():
			log.Warn("the demo is not converged yet; see 'hoist status'")
			return
		case <-tick.C:
		}
	}
}

// removeDockerReplicas removes node's Docker containers when hoist dev
// runs processes: a start with Docker leaves its replicas running for the
// next start to adopt, and a start with processes would otherwise serve
// beside them while nothing manages them. Only containers with hoist's
// labels for node are touched.
func removeDockerReplicas(ctx context.Context, node string, log *slog.Logger) {
	if pingDocker(ctx) != nil {
		return
	}
	d, err := docker.New(docker.Config{Node: node, Logger: log})
	if err != nil {
		return
	}
	defer d.Close()
	reps, err := d.List(ctx)
	if err != nil || len(reps) == 0 {
		return
	}
	log.Info("removing the Docker replicas an earlier hoist dev left running: this one runs local processes", "count", len(reps))
	stopReplicas(d, true, log)
}

// stopReplicas stops this node's replicas: always for local processes (no
// hoist process outlives hoist dev), for containers with --clean.
func stopReplicas(rt deploy.Runtime, stop bool, log *slog.Logger) {
	if !stop {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reps, err := rt.List(ctx)
	if err != nil {
		log.Error("list replicas to stop", "err", err)
		return
	}
	for _, r := range reps {
		if err := rt.Stop(ctx, r.ID, 5*time.Second); err != nil {
			log.Warn("stop replica", "replica", r.Name, "err", err)
		}
		if err := rt.Remove(ctx, r.ID); err != nil {
			log.Warn("remove replica", "replica", r.Name, "err", err)
		}
	}
	log.Info("stopped the replicas", "count", len(reps))
}

func printDevBanner(c *cli.Context, natsURL, balancerAddr, agentCheck, apiAddr, rt, dataDir string) {
	w := c.App.Writer
	dashboard := "(off)"
	if apiAddr != "" {
		dashboard = "http://" + apiAddr + "/scopes/" + demoScope.String() + "   (API: http://" + apiAddr + "/v1, metrics: /metrics)"
	}
	fmt.Fprintf(w, `
hoist dev is up (replicas: %s; data: %s)
  dashboard    %s
  NATS         %s
  balancer     http://%s
  agent check  %s

Try, in another terminal (no hoist on your PATH? use 'go run ./cmd/hoist' in its place):
%s  curl -H 'Host: %s' %s          # answered by a demo replica (it names itself)
  hoist status demo.dev.web                 # the node, its replicas and their backends
  hoist scale demo.dev.web 5
  hoist score demo.dev.web BACKEND 0        # BACKEND from 'hoist status'; 0 = no new requests
  hoist log demo.dev.web
Ctrl-C stops everything.
`, rt, dataDir, dashboard, natsURL, balancerAddr, orNone(agentCheck), natsHint(natsURL), demoHost, balancerAddr)
}

// natsHint tells the other terminal where NATS is when it is not where
// hoist looks by default.
func natsHint(natsURL string) string {
	if natsURL == store.DefaultURL {
		return ""
	}
	return "  export HOIST_NATS_URL=" + natsURL + "   # NATS is not at the default address\n"
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func orNone(s string) string {
	if s == "" {
		return "(off)"
	}
	return s
}
