package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/balancer"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/haproxy"
)

func haproxyCommand() *cli.Command {
	env := func(name string) []string {
		return []string{"HOIST_HAPROXY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	return &cli.Command{
		Name:     "haproxy",
		Category: "run",
		Usage:    "keep HAProxy backends on the replicas of their scopes, through HAProxy's Runtime API",
		Description: `Follows the backends agents announce, backend scores and node drains (as the
hoist balancer does) and moves the servers of HAProxy backends onto the live
replicas, over HAProxy's stats socket: no reload, no configuration file written.
Each --backend names an HAProxy backend that has a server-template, and the
scope it serves. A live replica takes a free server (set server addr, weight,
state ready); weight = its score (0-100, --default-score when unscored, 0 on a
drained node); a server whose replica left is drained, then put in maintenance
once its sessions end. Everything is read back from HAProxy on every sync
(every --interval, and at once after a change), so a reloaded HAProxy is
repaired. The template needs one server per replica, plus one per node for the
replica a rollout starts before it stops the old one. See docs/haproxy.md.

Example:
   hoist haproxy --socket /run/haproxy/admin.sock --backend acme_web=acme.prod.web`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "socket", EnvVars: env("socket"), Value: "/run/haproxy/admin.sock", Usage: "HAProxy's stats socket at level admin: a Unix socket `PATH`, or host:port"},
			&cli.StringSliceFlag{Name: "backend", EnvVars: env("backend"), Usage: "`HAPROXY_BACKEND=SCOPE`: the HAProxy backend that serves a scope (repeat it)"},
			&cli.DurationFlag{Name: "interval", EnvVars: env("interval"), Value: time.Second, Usage: "sync every backend at least every `D`"},
			&cli.DurationFlag{Name: "timeout", EnvVars: env("timeout"), Value: 2 * time.Second, Usage: "timeout `D` of one Runtime API command"},
			&cli.IntFlag{Name: "default-score", EnvVars: env("default-score"), Value: balancer.DefaultDefaultScore, Usage: "`SCORE` (0-100) of replicas that have none"},
			&cli.DurationFlag{Name: "score-max-age", EnvVars: env("score-max-age"), Usage: "scores older than `D` fall back to --default-score (0: never)"},
		},
		Action: runHAProxy,
	}
}

// haproxyMappings reads the repeated --backend flags.
func haproxyMappings(flags []string) ([]haproxy.Mapping, error) {
	if len(flags) == 0 {
		return nil, usagef("give at least one --backend HAPROXY_BACKEND=SCOPE (e.g. --backend acme_web=acme.prod.web)")
	}
	var out []haproxy.Mapping
	for _, f := range flags {
		be, s, ok := strings.Cut(f, "=")
		if !ok || be == "" || strings.ContainsAny(be, " \t/") {
			return nil, usagef("--backend %q: want HAPROXY_BACKEND=SCOPE, the backend's name as in haproxy.cfg (no spaces or /)", f)
		}
		sc, err := events.ParseScope(s)
		if err != nil {
			return nil, usagef("--backend %q: %v", f, err)
		}
		out = append(out, haproxy.Mapping{Backend: be, Scope: sc})
	}
	return out, nil
}

// haproxyConfig reads and checks the flags; errors are usage errors.
func haproxyConfig(c *cli.Context) (haproxy.Config, error) {
	var cfg haproxy.Config
	if c.NArg() > 0 {
		return cfg, usagef("usage: hoist haproxy --socket PATH --backend HAPROXY_BACKEND=SCOPE... (unexpected argument %q)", c.Args().First())
	}
	maps, err := haproxyMappings(c.StringSlice("backend"))
	if err != nil {
		return cfg, err
	}
	rt, err := haproxy.NewRuntime(c.String("socket"), c.Duration("timeout"))
	if err != nil {
		return cfg, usagef("--socket: %v", err)
	}
	if c.Duration("interval") <= 0 || c.Duration("timeout") <= 0 {
		return cfg, usagef("--interval and --timeout want a positive duration like 1s")
	}
	if c.Duration("score-max-age") < 0 {
		return cfg, usagef("--score-max-age must not be negative")
	}
	if err := events.ValidateScore(c.Int("default-score")); err != nil {
		return cfg, usagef("--default-score %d: want 0-100", c.Int("default-score"))
	}
	cfg = haproxy.Config{Runtime: rt, Mappings: maps, Interval: c.Duration("interval"),
		DefaultScore: c.Int("default-score"), ScoreMaxAge: c.Duration("score-max-age")}
	if _, err := haproxy.New(cfg); err != nil { // a backend mapped twice
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

func runHAProxy(c *cli.Context) error {
	cfg, err := haproxyConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg.Logger = log
	s, err := haproxy.New(cfg)
	if err != nil {
		return err
	}
	// HAProxy first: a wrong socket or backend name is told at once, not
	// after the streams were read.
	if err := s.Check(c.Context); err != nil {
		return err
	}
	nc, err := store.Connect(connectOptions(c, "hoist haproxy", true, log))
	if err != nil {
		return err
	}
	defer nc.Close() // it only reads: nothing to flush
	st, err := openStoreWaiting(c.Context, nc, log)
	if err != nil {
		return err
	}
	for _, m := range cfg.Mappings {
		log.Info("hoist haproxy syncs", "backend", m.Backend, "scope", m.Scope, "socket", cfg.Runtime.String())
	}
	return s.Run(c.Context, st)
}
