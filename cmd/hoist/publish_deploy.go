package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Category:  "publish",
		Usage:     "deploy an image or a command to a scope (a new revision of its whole spec)",
		ArgsUsage: "SCOPE (--image IMAGE | --command \"ARGV\") [options]",
		Description: `Publishes a "deployed" event: the scope's new spec. Options you leave out keep
their current values (replicas, port, env, hosts, …), so deploying a new image
does not undo an earlier scale or env change. --env adds to the current env;
remove variables with 'hoist env SCOPE --unset K'. --host, when given, replaces
the host list. A first deploy starts from 1 replica.

--image runs a container; --command runs a process (or, with --image, overrides
the image's command). ARGV is split like a shell would: quotes group words.
They too keep their values: --command alone on a scope with an image overrides
its command and keeps the image, --image alone keeps that override. A scope
that ran a process and gets an --image runs the image's own command.

With --canary SHARE the spec is not deployed but started as a canary beside the
scope's stable spec: each serving node runs --canary-replicas replicas of it, and
balancers send it SHARE percent of new requests (see 'hoist canary --help').

Example:
   hoist deploy acme.prod.web --image registry.local/web:1 --replicas 3 --port 8080 --host web.example.com
   hoist deploy acme.dev.api --command "./api --listen :8080" --env MODE=dev
   hoist deploy acme.prod.web --image registry.local/web:2 --canary 10 --sticky`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "container `IMAGE` to run"},
			&cli.StringFlag{Name: "command", Usage: "`ARGV` to run, split like a shell would"},
			&cli.IntFlag{Name: "replicas", Value: 1, DefaultText: "current, or 1 on a first deploy", Usage: "number of replicas `N`"},
			&cli.IntFlag{Name: "port", DefaultText: "current, or none", Usage: "`PORT` the replica listens on (inside its container)"},
			&cli.GenericFlag{Name: "env", Value: &listValue{}, EnvVars: []string{"HOIST_ENV"}, Usage: "set an environment variable `K=V` (repeatable)"},
			&cli.StringSliceFlag{Name: "host", Usage: "virtual `HOST` the balancer routes to the scope (repeatable)"},
			&cli.StringFlag{Name: "health-path", Usage: "HTTP `PATH` probed for health"},
			&cli.IntFlag{Name: "surge", DefaultText: "current, or 1", Usage: "new replicas `N` started beyond --replicas during a rollout"},
			&cli.DurationFlag{Name: "health-timeout", DefaultText: "current, or 1m", Usage: "time `D` a new replica has to become healthy"},
			&cli.StringFlag{Name: "restart", Usage: "Docker restart `POLICY`: no, always, on-failure, unless-stopped"},
			&cli.Int64Flag{Name: "memory", DefaultText: "current, or none", Usage: "memory limit in `MB`"},
			&cli.Float64Flag{Name: "cpus", DefaultText: "current, or none", Usage: "CPU limit `F` (e.g. 0.5)"},
			&cli.DurationFlag{Name: "cache-ttl", DefaultText: "current, or no cache", Usage: "let the balancer cache responses for `D` (0 turns caching off)"},
			&cli.Int64Flag{Name: "cache-max-bytes", DefaultText: "64 MiB", Usage: "size `N` in bytes of the balancer's cache for the scope; one response may take a quarter of it, at most 16 MiB"},
			&cli.IntFlag{Name: "canary", Usage: "start the spec as a canary that gets `SHARE` percent (0-100) of new requests, beside the stable spec"},
			&cli.IntFlag{Name: "canary-replicas", Value: 1, Usage: "with --canary: canary replicas `N` on each serving node"},
			&cli.BoolFlag{Name: "sticky", Usage: "with --canary: keep each client on the side (canary or stable) it first reached, by cookie"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: deployAction,
	}
}

func deployAction(c *cli.Context) error {
	a, err := args(c, 1, 1, "SCOPE (--image IMAGE | --command \"ARGV\")")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	sc, err := specFlags(c)
	if err != nil {
		return err
	}
	if c.IsSet("canary") {
		return deployCanary(c, scope, sc)
	}
	for _, f := range []string{"canary-replicas", "sticky"} {
		if c.IsSet(f) {
			return usagef("--%s needs --canary SHARE", f)
		}
	}
	// Check the flags on their own before connecting: the spec a first
	// deploy would publish.
	build, first, err := change.Deploy(sc.Apply)
	if err != nil {
		return err
	}
	warnPlainSecrets(c, scope, first.Env)
	ev, err := publishScope(c, scope, warnEndsCanary(c, scope, build))
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

// specFlags reads deploy's flags into the change they make to a spec.
func specFlags(c *cli.Context) (*change.SpecChange, error) {
	// A canary starts from the running spec, so it may change only env.
	if !c.IsSet("image") && !c.IsSet("command") && !c.IsSet("canary") {
		return nil, usagef("deploy needs --image IMAGE or --command \"ARGV\" (see 'hoist deploy --help')")
	}
	sc := &change.SpecChange{Image: c.String("image")}
	if c.IsSet("image") && sc.Image == "" {
		return nil, usagef("--image is empty")
	}
	if c.IsSet("command") {
		var err error
		if sc.Command, err = splitArgs(c.String("command")); err != nil {
			return nil, usagef("--command %q: %v", c.String("command"), err)
		}
		if len(sc.Command) == 0 {
			return nil, usagef("--command is empty")
		}
	}
	env, err := parseEnvPairs(listFlagValues(c, "env"))
	if err != nil {
		return nil, err
	}
	sc.Env = env
	if c.IsSet("cache-max-bytes") && !c.IsSet("cache-ttl") {
		return nil, usagef("--cache-max-bytes needs --cache-ttl")
	}
	if c.IsSet("host") {
		sc.Hosts = append([]string{}, c.StringSlice("host")...)
	}
	set := c.IsSet
	if set("replicas") {
		sc.Replicas = ptr(c.Int("replicas"))
	}
	if set("port") {
		if c.Int("port") == 0 { // not a silent "no port"
			return nil, usagef("--port 0: want 1-65535 (a scope without a port is deployed without --port)")
		}
		sc.Port = ptr(c.Int("port"))
	}
	if set("health-path") {
		sc.HealthPath = ptr(c.String("health-path"))
	}
	if set("surge") {
		sc.Surge = ptr(c.Int("surge"))
	}
	if set("health-timeout") {
		sc.HealthTimeout = ptr(events.Duration(c.Duration("health-timeout")))
	}
	if set("restart") {
		sc.Restart = ptr(c.String("restart"))
	}
	if set("memory") {
		sc.MemoryMB = ptr(c.Int64("memory"))
	}
	if set("cpus") {
		sc.CPUs = ptr(c.Float64("cpus"))
	}
	if set("cache-ttl") {
		sc.CacheTTL = ptr(events.Duration(c.Duration("cache-ttl")))
		sc.CacheMaxBytes = ptr(c.Int64("cache-max-bytes"))
	}
	return sc, nil
}

func ptr[T any](v T) *T { return &v }

// warnEndsCanary warns, once, when the change build makes ends a running
// canary: a deploy replaces both specs, so the canary's replicas stop.
func warnEndsCanary(c *cli.Context, scope events.Scope, build change.Builder) change.Builder {
	warned := false
	return func(h *projector.History) (events.Payload, error) {
		if cn := h.State().Canary; cn != nil && !warned {
			warned = true
			fmt.Fprintf(c.App.ErrWriter, "hoist: warning: this deploy ends the canary of %s (revision %d, at %d%%): its replicas stop; 'hoist promote %s' would have kept its spec\n",
				scope, cn.ID, cn.Share, scope)
		}
		return build(h)
	}
}
