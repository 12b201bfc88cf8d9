package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

func balancerCommand() *cli.Command {
	d := balancer.DefaultConfig()
	// HOIST_BALANCER_*: a plain HOIST_LISTEN would also reach other commands.
	env := func(name string) []string {
		return []string{"HOIST_BALANCER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	return &cli.Command{
		Name:     "balancer",
		Category: "run",
		Usage:    "proxy HTTP and WebSockets to the backends of each scope, weighted by score",
		Description: `Follows the event streams: each scope's hosts (hoist deploy --host), the backends
agents announce (or 'hoist announce' registers), backend scores (hoist score) and
node drains. Requests are routed by Host header (exact name, then *.wildcards up
to 5 levels, then --default-scope) and spread over the scope's backends by smooth
weighted round-robin: weight = score (0-100), --default-score when unscored, 0 on
drained nodes. A backend that refuses connections or times out is skipped for
--dead-ttl; idempotent requests are retried once on another backend.

SIGTERM drains: no new connections, in-flight requests finish (--drain-timeout).
To restart without dropping a connection, run every balancer of a host with the
same --handoff-socket: start the new one, wait for its "balancer listening"
line, then SIGTERM the old one. Sockets passed by systemd (LISTEN_FDS,
FileDescriptorName=http|https|metrics) are used instead of binding.

Example:
   hoist balancer --listen 0.0.0.0:80 --metrics 127.0.0.1:9180
   hoist balancer --tls-cert a.pem --tls-key a.key --tls-cert b.pem --tls-key b.key`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", EnvVars: env("listen"), Value: d.Listen, Usage: "HTTP `ADDR` (host:port; empty disables)"},
			&cli.StringFlag{Name: "metrics", EnvVars: env("metrics"), Usage: "`ADDR` for /metrics, /healthz and /debug/table (off when empty)"},
			&cli.StringFlag{Name: "tls-listen", EnvVars: env("tls-listen"), Value: d.TLSListen, Usage: "HTTPS `ADDR`, used with --tls-cert"},
			&cli.StringSliceFlag{Name: "tls-cert", EnvVars: env("tls-cert"), Usage: "TLS certificate `FILE`; repeat with --tls-key for each name (chosen by SNI)"},
			&cli.StringSliceFlag{Name: "tls-key", EnvVars: env("tls-key"), Usage: "TLS key `FILE`, one per --tls-cert, in the same order"},
			&cli.IntFlag{Name: "default-score", EnvVars: env("default-score"), Value: d.DefaultScore, Usage: "`SCORE` (0-100) of backends that have none"},
			&cli.DurationFlag{Name: "score-max-age", EnvVars: env("score-max-age"), Usage: "scores older than `D` fall back to --default-score (0: never)"},
			&cli.StringFlag{Name: "default-scope", EnvVars: env("default-scope"), Usage: "`SCOPE` that serves hosts no scope claims (else 404)"},
			&cli.StringFlag{Name: "error-pages", EnvVars: env("error-pages"), Usage: "`DIR` with 404.html, 502.html, 503.html… replacing the plain pages"},
			&cli.DurationFlag{Name: "dead-ttl", EnvVars: env("dead-ttl"), Value: d.DeadTTL, Usage: "how long a failing backend is skipped (`D`)"},
			&cli.BoolFlag{Name: "dead-on-5xx", EnvVars: env("dead-on-5xx"), Usage: "also mark a backend dead when it answers 5xx"},
			&cli.DurationFlag{Name: "active-check-interval", EnvVars: env("active-check-interval"), Usage: "probe each scope's --health-path every `D` (0: off)"},
			&cli.DurationFlag{Name: "dial-timeout", EnvVars: env("dial-timeout"), Value: d.DialTimeout, Usage: "upstream connect timeout `D`"},
			&cli.DurationFlag{Name: "response-header-timeout", EnvVars: env("response-header-timeout"), Value: d.ResponseHeaderTimeout, Usage: "how long to wait for a backend's response headers (`D`)"},
			&cli.DurationFlag{Name: "idle-timeout", EnvVars: env("idle-timeout"), Value: d.IdleTimeout, Usage: "idle keep-alive timeout `D`, clients and upstreams"},
			&cli.IntFlag{Name: "pause-queue", EnvVars: env("pause-queue"), Value: d.PauseQueue, Usage: "hold at most `N` requests per paused scope (hoist pause); past it, 503 at once"},
			&cli.Int64Flag{Name: "max-body", EnvVars: env("max-body"), Usage: "largest request body in `BYTES` (0: no limit); larger gets 413"},
			&cli.DurationFlag{Name: "drain-timeout", Aliases: []string{"shutdown-timeout"}, EnvVars: append(env("drain-timeout"), env("shutdown-timeout")...), Value: d.ShutdownTimeout, Usage: "on SIGTERM, how long to let in-flight requests finish (`D`)"},
			&cli.StringFlag{Name: "handoff-socket", EnvVars: env("handoff-socket"), Usage: "Unix socket `PATH`: take the listening sockets of the balancer serving it, and serve ours there for the next one (restarts drop nothing)"},
			&cli.BoolFlag{Name: "reuse-port", EnvVars: env("reuse-port"), Usage: "bind with SO_REUSEPORT once caught up, so a new balancer can take over the port of a running one (Linux)"},
			&cli.BoolFlag{Name: "access-log", EnvVars: env("access-log"), Usage: "log every request at info level"},
		},
		Action: runBalancer,
	}
}

// balancerConfig reads and checks the flags; errors are usage errors.
func balancerConfig(c *cli.Context) (balancer.Config, error) {
	cfg := balancer.DefaultConfig()
	if c.NArg() > 0 {
		return cfg, usagef("usage: hoist balancer [options] (unexpected argument %q)", c.Args().First())
	}
	cfg.Listen, cfg.MetricsListen, cfg.TLSListen = c.String("listen"), c.String("metrics"), c.String("tls-listen")
	for _, f := range []string{"listen", "metrics", "tls-listen"} {
		if err := checkListen("--"+f, c.String(f)); err != nil {
			return cfg, err
		}
	}
	certs, keys := c.StringSlice("tls-cert"), c.StringSlice("tls-key")
	if len(certs) != len(keys) {
		return cfg, usagef("--tls-cert and --tls-key come in pairs: got %d certificate(s) and %d key(s)", len(certs), len(keys))
	}
	for i := range certs {
		cfg.TLSCerts = append(cfg.TLSCerts, balancer.CertFiles{Cert: certs[i], Key: keys[i]})
	}
	cfg.DefaultScore = c.Int("default-score")
	if err := events.ValidateScore(cfg.DefaultScore); err != nil {
		return cfg, usagef("--default-score %d: want 0-100", cfg.DefaultScore)
	}
	if s := c.String("default-scope"); s != "" {
		sc, err := events.ParseScope(s)
		if err != nil {
			return cfg, usagef("--default-scope: %v", err)
		}
		cfg.DefaultScope = sc
	}
	if cfg.ErrorPagesDir = c.String("error-pages"); cfg.ErrorPagesDir != "" {
		if fi, err := os.Stat(cfg.ErrorPagesDir); err != nil || !fi.IsDir() {
			return cfg, usagef("--error-pages %q: not a readable directory", cfg.ErrorPagesDir)
		}
	}
	cfg.DeadOn5xx, cfg.AccessLog, cfg.ReusePort = c.Bool("dead-on-5xx"), c.Bool("access-log"), c.Bool("reuse-port")
	cfg.HandoffSocket = c.String("handoff-socket")
	durations := []struct {
		flag     string
		dst      *time.Duration
		positive bool
	}{
		{"score-max-age", &cfg.ScoreMaxAge, false},
		{"dead-ttl", &cfg.DeadTTL, true},
		{"active-check-interval", &cfg.ActiveCheckInterval, false},
		{"dial-timeout", &cfg.DialTimeout, true},
		{"response-header-timeout", &cfg.ResponseHeaderTimeout, false},
		{"idle-timeout", &cfg.IdleTimeout, true},
		{"drain-timeout", &cfg.ShutdownTimeout, true},
	}
	for _, d := range durations {
		v := c.Duration(d.flag)
		if v < 0 || (d.positive && v == 0) {
			return cfg, usagef("--%s %s: want a positive duration like 30s", d.flag, v)
		}
		*d.dst = v
	}
	if cfg.ResponseHeaderTimeout == 0 {
		cfg.ResponseHeaderTimeout = -1 // 0 on the command line means "no limit"
	}
	if cfg.PauseQueue = c.Int("pause-queue"); cfg.PauseQueue < 1 {
		return cfg, usagef("--pause-queue %d: want at least 1 request per paused scope", cfg.PauseQueue)
	}
	if cfg.MaxBody = c.Int64("max-body"); cfg.MaxBody < 0 {
		return cfg, usagef("--max-body %d: want 0 (no limit) or a number of bytes", cfg.MaxBody)
	}
	if cfg.Listen == "" && len(cfg.TLSCerts) == 0 {
		return cfg, usagef("nothing to serve: give --listen, or --tls-cert and --tls-key")
	}
	if cfg.ReusePort && runtime.GOOS != "linux" {
		return cfg, usagef("--reuse-port: supported on Linux only")
	}
	if cfg.HandoffSocket != "" && runtime.GOOS == "windows" {
		return cfg, usagef("--handoff-socket: not supported on Windows")
	}
	return cfg, nil
}

// passedListeners takes the sockets systemd passed (socket activation), or
// else those of the balancer serving --handoff-socket; nil when there are
// none. They replace binding the address of their name.
func passedListeners(cfg balancer.Config, log *slog.Logger) (map[string]net.Listener, error) {
	from := "systemd"
	lns, err := balancer.ActivatedListeners()
	if errors.Is(err, balancer.ErrNotActivated) && cfg.HandoffSocket != "" {
		from = "handoff " + cfg.HandoffSocket
		lns, err = balancer.TakeOver(cfg.HandoffSocket)
		if errors.Is(err, balancer.ErrNoPredecessor) {
			log.Info("balancer has no predecessor on its handoff socket: it binds its addresses", "handoff", cfg.HandoffSocket)
			return nil, nil
		}
	}
	if errors.Is(err, balancer.ErrNotActivated) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for name, ln := range lns {
		log.Info("balancer uses a passed socket", "on", name, "addr", ln.Addr().String(), "from", from)
	}
	return lns, nil
}

func runBalancer(c *cli.Context) error {
	cfg, err := balancerConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if c.String("nats-creds") != "" {
		// Under auth a balancer publishes its canary statistics under its
		// credential's name only.
		cfg.Name = actorOf(c)
	}
	if cfg.Listeners, err = passedListeners(cfg, log); err != nil {
		return err
	}
	nc, err := store.Connect(connectOptions(c, "hoist balancer", true, log))
	if err != nil {
		return err
	}
	// Close, not Drain: the balancer only reads, and its consumers are
	// stopped by then, so there is nothing to flush (Drain took seconds).
	defer nc.Close()
	st, err := openStoreWaiting(c.Context, nc, log)
	if err != nil {
		return err
	}
	b, err := balancer.New(cfg, st, log)
	if err != nil {
		return err
	}
	return b.Run(c.Context)
}

func announceCommand() *cli.Command {
	return &cli.Command{
		Name:      "announce",
		Category:  "publish",
		Usage:     "register backends of a scope that no hoist agent runs (or withdraw them)",
		ArgsUsage: "SCOPE [BACKEND...]",
		Description: `Publishes a backends report for --node (default "static"), as an agent does for
the replicas it runs. The report replaces that node's backends for the scope, so
name every backend each time; with no BACKEND the node's backends are withdrawn.
BACKEND is host:port. Balancers route the hosts named with --host, and those of
the scope's deploy as its agents report them, to every announced backend. An announced set stays until it is replaced or
withdrawn (HOIST_BACKENDS has no age limit).

Example:
   hoist announce acme.prod.web 10.0.0.5:8080 10.0.0.6:8080 --host web.acme.example
   hoist announce acme.prod.web --node static        # withdraw them`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Value: "static", EnvVars: []string{"HOIST_ANNOUNCE_NODE"}, Usage: "announce as node `NAME`"},
			&cli.StringSliceFlag{Name: "host", EnvVars: []string{"HOIST_ANNOUNCE_HOST"}, Usage: "virtual `HOST` the balancers route to these backends (repeat it)"},
			&cli.BoolFlag{Name: "json", Usage: "print the published report as JSON"},
		},
		Action: announce,
	}
}

// announceReport checks the arguments and builds the report.
func announceReport(c *cli.Context) (*events.BackendsReport, error) {
	if c.NArg() < 1 {
		return nil, usagef("usage: hoist announce SCOPE [BACKEND...] [--node NAME] (see 'hoist announce --help')")
	}
	a := c.Args().Slice()
	scope, err := parseScope(a[0])
	if err != nil {
		return nil, err
	}
	node := c.String("node")
	if err := events.ValidateNodeName(node); err != nil {
		return nil, usagef("--node: %v", err)
	}
	seen := make(map[string]bool)
	backends := []string{}
	for _, be := range a[1:] {
		if err := events.ValidateBackend(be); err != nil {
			return nil, usagef("%v", err)
		}
		if seen[be] {
			return nil, usagef("backend %q is given twice", be)
		}
		seen[be] = true
		backends = append(backends, be)
	}
	var hosts []string
	for _, h := range c.StringSlice("host") {
		if err := events.ValidateHost(h); err != nil {
			return nil, usagef("--host %v", err)
		}
		hosts = append(hosts, h)
	}
	return &events.BackendsReport{Node: node, Scope: scope, Backends: backends, Hosts: hosts, Time: time.Now().UTC()}, nil
}

func announce(c *cli.Context) error {
	r, err := announceReport(c)
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
	defer cancel()
	if err := st.PublishBackends(ctx, r); err != nil {
		if errors.Is(err, events.ErrInvalid) {
			return usagef("%v", err)
		}
		return fmt.Errorf("announce backends: %w", err)
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if len(r.Backends) == 0 {
		_, err = fmt.Fprintf(w, "%s: node %s withdrew its backends\n", r.Scope, r.Node)
		return err
	}
	_, err = fmt.Fprintf(w, "%s: node %s announces %d backend(s): %s\n", r.Scope, r.Node, len(r.Backends), strings.Join(r.Backends, " "))
	return err
}
