package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The commands that change part of a deployed scope: scale, env, rollback,
// remove. Each depends on the scope's current state, so each goes through
// publishScope and refuses (exit 2) what the fold would not apply.

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Category:  "publish",
		Usage:     "change a scope's number of replicas",
		ArgsUsage: "SCOPE REPLICAS",
		Description: `Publishes a "scaled" event. 0 replicas stops every replica but keeps the spec.

Example:
   hoist scale acme.prod.web 5
   hoist scale acme.prod.web 2 --expect-revision 7`,
		Flags:  []cli.Flag{expectRevisionFlag(), jsonFlag()},
		Action: scaleAction,
	}
}

func scaleAction(c *cli.Context) error {
	a, err := args(c, 2, 2, "SCOPE REPLICAS")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	n, err := parseInt("replicas", a[1])
	if err != nil {
		return err
	}
	build, err := change.Scale(scope, n)
	if err != nil {
		return err
	}
	ev, err := publishScope(c, scope, build)
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Category:  "publish",
		Usage:     "set or unset a scope's environment variables",
		ArgsUsage: "SCOPE [K=V...] [--unset K]...",
		Description: `Publishes an "env_changed" event. Variables not named keep their values.

Example:
   hoist env acme.prod.web MODE=fast LOG_LEVEL=debug
   hoist env acme.prod.web --unset LOG_LEVEL`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "unset", Usage: "remove the variable `K` (repeatable)"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: envAction,
	}
}

func envAction(c *cli.Context) error {
	a, err := args(c, 1, -1, "SCOPE [K=V...] [--unset K]...")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	set, err := parseEnvPairs(a[1:])
	if err != nil {
		return err
	}
	build, err := change.Env(scope, set, c.StringSlice("unset"))
	if err != nil {
		return err
	}
	warnPlainSecrets(c, scope, set)
	ev, err := publishScope(c, scope, build)
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Category:  "publish",
		Usage:     "restore a scope's spec as it was at an earlier revision",
		ArgsUsage: "SCOPE [--to REVISION]",
		Description: `Publishes a "rolled_back" event. Without --to, it restores the latest earlier
revision whose spec differs from the current one ('hoist log SCOPE' shows them).

Example:
   hoist rollback acme.prod.web
   hoist rollback acme.prod.web --to 3`,
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "to", DefaultText: "the latest earlier revision with a different spec", Usage: "the `REVISION` to restore"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: rollbackAction,
	}
}

func rollbackAction(c *cli.Context) error {
	a, err := args(c, 1, 1, "SCOPE [--to REVISION]")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	if c.IsSet("to") {
		if err := parsePositiveRevision("--to", c.Uint64("to")); err != nil {
			return err
		}
	}
	ev, err := publishScope(c, scope, change.Rollback(scope, c.Uint64("to")))
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

func removeCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Category:  "publish",
		Usage:     "stop every replica of a scope (a later deploy revives it)",
		ArgsUsage: "SCOPE",
		Description: `Publishes a "removed" event. The history stays: 'hoist log' and 'hoist state --at'
still show every revision.

Example:
   hoist remove acme.prod.web`,
		Flags:  []cli.Flag{expectRevisionFlag(), jsonFlag()},
		Action: removeAction,
	}
}

var removeAction = publishOnScope(change.Remove)

// requireDeployed refuses a change to a scope that has no deploy yet.
func requireDeployed(scope events.Scope, h *projector.History) error {
	return change.RequireDeployed(scope, h)
}
