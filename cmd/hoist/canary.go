package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
)

// The canary commands: 'hoist deploy --canary' starts one, 'hoist canary'
// shifts its share, 'hoist promote' and 'hoist abort' end it. Each goes
// through publishScope, so each refuses (exit 2, nothing published) what
// the fold would skip: a second canary, a shift of none.

// deployCanary publishes canary_started with the spec the deploy would
// have made.
func deployCanary(c *cli.Context, scope events.Scope, sc *change.SpecChange) error {
	o := change.CanaryOptions{Share: c.Int("canary"), Replicas: c.Int("canary-replicas"), Sticky: c.Bool("sticky")}
	build, err := change.Canary(scope, sc.Apply, o)
	if err != nil {
		return err
	}
	warnPlainSecrets(c, scope, sc.Env)
	return publishPrinted(c, scope, build)
}

// canaryCommand shifts the running canary's share. Its flags and the
// shift it publishes come from canaryShiftFlags and canaryShift, so that
// an automatic analysis's options can be added beside them.
func canaryCommand() *cli.Command {
	return &cli.Command{
		Name:      "canary",
		Category:  "publish",
		Usage:     "set the share of new requests a scope's running canary gets",
		ArgsUsage: "SCOPE SHARE | SCOPE [SHARE] --auto [--steps 10,25,50,100] [--interval 1m] [--max-error-rate 1%] [--max-p99 D] [--min-requests N]",
		Description: `Publishes a "canary_shifted" event: balancers send SHARE percent (0-100) of the
scope's new requests to its canary's replicas, and the rest to the stable ones.
Balancers choose the side first, by share, then a backend within it by score;
requests already in flight finish where they are. A shift changes no replica:
agents hand it to balancers as soon as they read it.

Start a canary with 'hoist deploy SCOPE --image IMAGE --canary SHARE', end it with
'hoist promote SCOPE' (its spec becomes the scope's, rolled out health-gated) or
'hoist abort SCOPE' (its replicas drain and stop). 'hoist status SCOPE' shows it.

With --auto, the agents that serve the scope run the canary's analysis: at
each of --steps, once --interval passed and the canary served --min-requests,
its 5xx rate and p99 latency (as the balancers counted them) decide: over
--max-error-rate or --max-p99 it is aborted, else it goes to the next step,
and after the last it is promoted. Each decision is an event in the scope's
history with its figures ('hoist log SCOPE'); 'hoist status SCOPE' shows which
node runs the analysis and what it waits for. A shift by hand (without --auto)
stops the analysis.

Example:
   hoist deploy acme.prod.web --image registry.local/web:2 --canary 10
   hoist canary acme.prod.web 50
   hoist promote acme.prod.web

   hoist canary acme.prod.web --auto --steps 10,25,50,100 --interval 1m \
       --max-error-rate 1% --max-p99 300ms --min-requests 200`,
		Flags:  append(canaryShiftFlags(), expectRevisionFlag(), jsonFlag()),
		Action: canaryAction,
	}
}

func canaryShiftFlags() []cli.Flag { return canaryAutoFlags() }

// canaryShift is the shift 'hoist canary' publishes: by hand, to share,
// or with --auto to the analysis (canary_auto.go).
func canaryShift(c *cli.Context, share int) (*events.CanaryShifted, error) {
	return canaryAutoShift(c, share)
}

func canaryAction(c *cli.Context) error {
	a, err := args(c, canaryMinArgs(c), 2, "SCOPE SHARE")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	share := -1 // with --auto and no SHARE: the analysis's first step
	if len(a) == 2 {
		if share, err = parseInt("share", a[1]); err != nil {
			return err
		}
		if err := events.ValidateShare(share); err != nil {
			return err
		}
	}
	shift, err := canaryShift(c, share)
	if err != nil {
		return err
	}
	build, err := change.Shift(scope, shift)
	if err != nil {
		return err
	}
	return publishPrinted(c, scope, build)
}

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Category:  "publish",
		Usage:     "make a scope's running canary its spec",
		ArgsUsage: "SCOPE",
		Description: `Publishes a "canary_promoted" event: the canary's spec becomes the scope's.
Balancers stop sending the canary new requests at once; each node rolls its
stable replicas to the canary's spec start-first, health-gated, as a deploy
does, and only then stops the canary's replicas. 'hoist wait SCOPE' waits for it.

Example:
   hoist promote acme.prod.web && hoist wait acme.prod.web`,
		Flags:  []cli.Flag{expectRevisionFlag(), jsonFlag()},
		Action: promoteAction,
	}
}

var promoteAction = publishOnScope(change.Promote)

func abortCommand() *cli.Command {
	return &cli.Command{
		Name:      "abort",
		Category:  "publish",
		Usage:     "remove a scope's running canary",
		ArgsUsage: "SCOPE [--reason TEXT]",
		Description: `Publishes a "canary_aborted" event: balancers send the canary no new request at
once, and each node drains and stops its canary replicas; the stable spec serves
everything. The reason is kept in the scope's history ('hoist log SCOPE').

Example:
   hoist abort acme.prod.web --reason "p99 doubled on the canary"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why, in `TEXT` kept in the scope's history"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: abortAction,
	}
}

func abortAction(c *cli.Context) error {
	a, err := args(c, 1, 1, "SCOPE [--reason TEXT]")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	build, err := change.Abort(scope, c.String("reason"))
	if err != nil {
		return err
	}
	return publishPrinted(c, scope, build)
}

// publishOnScope is the action of a command that takes a SCOPE alone and
// publishes what the builder it makes for that scope decides.
func publishOnScope(builder func(events.Scope) scopeChange) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := args(c, 1, 1, "SCOPE")
		if err != nil {
			return err
		}
		scope, err := parseScope(a[0])
		if err != nil {
			return err
		}
		return publishPrinted(c, scope, builder(scope))
	}
}

// publishPrinted publishes what build decides and prints the stored event.
func publishPrinted(c *cli.Context, scope events.Scope, build scopeChange) error {
	ev, err := publishScope(c, scope, build)
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}
