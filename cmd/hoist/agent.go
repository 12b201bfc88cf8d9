package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/deploy/docker"
	"github.com/hoist-dev/hoist/deploy/process"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/nodeagent"
)

func agentCommand() *cli.Command {
	env := func(name string) []string {
		return []string{"HOIST_AGENT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	return &cli.Command{
		Name:     "agent",
		Category: "run",
		Usage:    "run the node agent: reconcile this node's replicas toward its scopes' events",
		Description: `The agent folds the events of the scopes in node.toml into desired state, keeps it
in its reference file, and starts, replaces and stops this node's replicas to match.
It reports its status and backends, and answers HAProxy agent checks.

If it cannot read the desired state (NATS unreachable and no reference file), it
leaves running replicas alone and says so. It never touches containers or
processes that do not carry its labels.

Signals: SIGUSR2 drains the node and SIGUSR1 undrains it (both publish an event,
like 'hoist drain'); SIGHUP reloads node.toml and config.toml (scopes may change);
SIGINT or SIGTERM stop the agent and leave the replicas running.

node.toml:
   version = "1"
   name = "node-1"                # default: the hostname
   client = "acme"                # with environment and solution, or:
   environment = "prod"           # scopes = ["acme.prod.web", "acme.prod.api"]
   solution = "web"
   advertise = "127.0.0.1"        # where balancers reach this node's replicas

config.toml (optional; by default config.toml next to node.toml, if any):
   reference_file_path = "reference.json"   # relative to config.toml

Example:
   hoist agent --node-config /etc/hoist/node.toml --agent-check 0.0.0.0:9777
   hoist agent --runtime process --data ./hoist-agent`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node-config", Value: "node.toml", EnvVars: env("node-config"), Usage: "node config `FILE`"},
			&cli.StringFlag{Name: "config", EnvVars: env("config"), DefaultText: "config.toml next to the node config, if present", Usage: "agent config `FILE`"},
			&cli.StringFlag{Name: "runtime", EnvVars: env("runtime"), DefaultText: "docker when an engine answers, else process", Usage: "`RUNTIME` of replicas: docker or process"},
			&cli.StringFlag{Name: "agent-check", Value: nodeagent.DefaultAgentCheck, EnvVars: env("agent-check"), Usage: "HAProxy agent-check listen `ADDR` (host:port; empty disables)"},
			&cli.StringFlag{Name: "data", EnvVars: env("data"), DefaultText: "~/.local/share/hoist/agent-NODE", Usage: "data `DIR`: the reference file (unless config.toml names one) and process logs"},
			&cli.StringFlag{Name: "advertise", EnvVars: env("advertise"), DefaultText: "node.toml's advertise", Usage: "`HOST` at which balancers reach this node's replicas"},
			&cli.DurationFlag{Name: "heartbeat", Value: nodeagent.DefaultHeartbeat, EnvVars: env("heartbeat"), Usage: "status heartbeat `INTERVAL`"},
			&cli.DurationFlag{Name: "resync", Value: nodeagent.DefaultResync, EnvVars: env("resync"), Usage: "periodic reconcile `INTERVAL`"},
			&cli.DurationFlag{Name: "drain-delay", Value: defaultDrainDelay, EnvVars: env("drain-delay"), Usage: "how long a replica that leaves (rollout, scale-down, remove) is withdrawn from balancers before it is stopped, so no new request reaches it (`D`; 0 stops at once; see docs/config.md)"},
			&cli.StringFlag{Name: "metrics", EnvVars: env("metrics"), Usage: "`ADDR` for /metrics (Prometheus text) and /healthz (off when empty)"},
		},
		Action: runAgent,
	}
}

// defaultDrainDelay gives balancers time to apply a withdrawn backend (they
// follow the stream within milliseconds) before the replica stops, so even
// requests that cannot be retried (POST) never reach a stopping replica.
const defaultDrainDelay = time.Second

// agentSetup is what the agent command was asked to run.
type agentSetup struct {
	node       nodeagent.Node
	nodeFile   string
	configFile string // "" when none
	refFile    string
	dataDir    string
}

// loadAgentSetup reads node.toml and config.toml and applies the flags.
func loadAgentSetup(c *cli.Context) (agentSetup, error) {
	s := agentSetup{nodeFile: c.String("node-config")}
	n, err := nodeagent.LoadNode(s.nodeFile)
	if errors.Is(err, os.ErrNotExist) {
		return s, usagef("node config %s does not exist: write one (see 'hoist agent --help') or pass --node-config", s.nodeFile)
	}
	if err != nil {
		return s, err
	}
	if adv := c.String("advertise"); adv != "" {
		if err := nodeagent.ValidateAdvertise(adv); err != nil {
			return s, usagef("--advertise: %v", err)
		}
		n.Advertise = adv
	}
	s.node = n
	s.dataDir = c.String("data")
	if s.dataDir == "" {
		s.dataDir = defaultDataDir("agent-" + n.Name)
	}
	s.configFile = c.String("config")
	if s.configFile == "" {
		if p := filepath.Join(filepath.Dir(s.nodeFile), "config.toml"); fileExists(p) {
			s.configFile = p
		}
	}
	if s.configFile != "" {
		af, err := nodeagent.LoadAgentConfig(s.configFile)
		if errors.Is(err, os.ErrNotExist) {
			return s, usagef("--config %s does not exist", s.configFile)
		}
		if err != nil {
			return s, err
		}
		s.refFile = af.ReferenceFile
	}
	if s.refFile == "" {
		s.refFile = filepath.Join(s.dataDir, "reference.json")
	}
	if abs, err := filepath.Abs(s.refFile); err == nil {
		s.refFile = abs // logs name the file wherever the agent was started
	}
	return s, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func runAgent(c *cli.Context) error {
	if _, err := args(c, 0, 0, ""); err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if c.Duration("heartbeat") <= 0 || c.Duration("resync") <= 0 {
		return usagef("--heartbeat and --resync must be positive")
	}
	if c.Duration("drain-delay") < 0 {
		return usagef("--drain-delay must not be negative")
	}
	switch rt := c.String("runtime"); rt {
	case "", "docker", "process":
	default:
		return usagef("--runtime %q: want docker or process", rt)
	}
	setup, err := loadAgentSetup(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(setup.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	rt, rtName, closeRT, err := openRuntime(c, setup, log)
	if err != nil {
		return err
	}
	defer closeRT()

	// Take the signals before the agent runs, so an early SIGHUP or SIGUSR
	// is handled and never falls to the default action (exit).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, agentSignals()...)
	defer signal.Stop(sigs)

	copts := connectOptions(c, "hoist agent "+setup.node.Name, true, log)
	var actor string // the credential's name, which node events must carry under auth
	if copts.CredsFile != "" {
		actor = actorOf(c)
	}
	agent, err := nodeagent.Open(nodeagent.Options{
		Actor:         actor,
		Node:          setup.node,
		ReferenceFile: setup.refFile,
		Runtime:       rt,
		RuntimeName:   rtName,
		Connect:       func(context.Context) (*nats.Conn, error) { return store.Connect(copts) },
		AgentCheck:    c.String("agent-check"),
		Heartbeat:     c.Duration("heartbeat"),
		Resync:        c.Duration("resync"),
		Deploy:        deploy.Config{DrainDelay: c.Duration("drain-delay")},
		Version:       versionString(),
		Logger:        log,
	})
	if err != nil {
		return err
	}
	defer agent.Close()
	stopMetrics, err := serveMetrics(c.String("metrics"), agent.MetricsHandler(), log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	log.Info("agent running", "node", setup.node.Name, "scopes", setup.node.Scopes, "runtime", rtName,
		"reference_file", setup.refFile, "agent_check", agent.AgentCheckAddr(), "advertise", setup.node.Advertise)

	for {
		select {
		case <-c.Context.Done():
			log.Info("agent stopping; replicas keep running")
			return nil
		case s := <-sigs:
			handleAgentSignal(c, s, agent, setup, log)
		}
	}
}

func handleAgentSignal(c *cli.Context, s os.Signal, agent *nodeagent.Agent, setup agentSetup, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
	defer cancel()
	switch s {
	case sigDrain:
		if err := agent.Drain(ctx, "SIGUSR2 to the agent"); err != nil {
			log.Error("drain", "err", err)
			return
		}
		log.Info("published node_drained")
	case sigUndrain:
		if err := agent.Undrain(ctx); err != nil {
			log.Error("undrain", "err", err)
			return
		}
		log.Info("published node_undrained")
	case sigReload:
		next, err := loadAgentSetup(c)
		if err != nil {
			log.Error("reload: config rejected; keeping the running config", "err", err)
			return
		}
		if next.refFile != setup.refFile {
			log.Warn("reload: the reference file path changed; restart the agent to use it", "path", next.refFile)
		}
		if err := agent.Reload(next.node); err != nil {
			log.Error("reload", "err", err)
			return
		}
		log.Info("reloaded node config", "scopes", next.node.Scopes)
	}
}

// openRuntime builds the runtime of --runtime, or docker when an engine
// answers and process otherwise.
func openRuntime(c *cli.Context, setup agentSetup, log *slog.Logger) (deploy.Runtime, string, func(), error) {
	return openRuntimeNamed(c.Context, c.String("runtime"), setup, log)
}

// openRuntimeNamed builds the runtime called name ("" picks one).
func openRuntimeNamed(ctx context.Context, name string, setup agentSetup, log *slog.Logger) (deploy.Runtime, string, func(), error) {
	switch name {
	case "", "docker":
		d, err := docker.New(docker.Config{Node: setup.node.Name, Logger: log})
		if err != nil {
			return nil, "", nil, err
		}
		perr := pingDocker(ctx)
		if perr == nil {
			return d, "docker", func() { d.Close() }, nil
		}
		d.Close()
		if name == "docker" {
			return nil, "", nil, fmt.Errorf("--runtime docker: the Docker engine does not answer: %w", perr)
		}
		log.Info("no Docker engine answers; running replicas as local processes", "err", perr)
		fallthrough
	case "process":
		p, err := process.New(process.Config{Node: setup.node.Name, DataDir: filepath.Join(setup.dataDir, "process"), Logger: log})
		if err != nil {
			return nil, "", nil, err
		}
		return p, "process", func() {}, nil
	}
	return nil, "", nil, fmt.Errorf("--runtime %q: want docker or process", name)
}

func pingDocker(ctx context.Context) error {
	cl, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = cl.Ping(ctx)
	return err
}
