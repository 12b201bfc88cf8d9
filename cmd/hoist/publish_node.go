package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// score, drain and undrain: the publishes that are not a scope's revision.

func scoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "score",
		Category:  "publish",
		Usage:     "set the score (0-100) of one backend of a scope; 0 = no new requests",
		ArgsUsage: "SCOPE BACKEND SCORE",
		Description: `Publishes a "backend_scored" event. BACKEND is a replica's slot, NODE#INDEX
(node-1#0: NODE and REPLICA in 'hoist status'), or its host:port. A slot's
score follows it across rollouts: the replica that replaces it, at a new
host port, gets the same score. A host:port that a node reports is scored
as its slot; --by-address keeps the score on the address instead, which a
rollout leaves behind. Balancers weight traffic by the latest score of each
backend. Scores do not change the scope's revision.

Example:
   hoist score acme.prod.web node-1#0 75
   hoist score acme.prod.web 127.0.0.1:31001 0     # the slot of that backend: no new requests`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "by-address", Usage: "score the host:port itself, not the slot it serves"},
			jsonFlag(),
		},
		Action: scoreAction,
	}
}

func scoreAction(c *cli.Context) error {
	a, err := args(c, 3, 3, "SCOPE BACKEND SCORE")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	n, err := parseInt("score", a[2])
	if err != nil {
		return err
	}
	score := &events.BackendScored{Backend: a[1], Score: n}
	ev := &events.Event{Scope: scope, Data: score, Actor: actorOf(c)}
	if err := ev.Validate(); err != nil {
		return err
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, publishTimeout)
	defer cancel()
	what := fmt.Sprintf("%s scored %d", a[1], n)
	if !events.IsSlot(a[1]) && !c.Bool("by-address") {
		slot, err := slotOf(ctx, st, scope, a[1])
		switch {
		case err != nil:
			return err
		case slot == "":
			fmt.Fprintf(c.App.ErrWriter, "hoist: warning: no node of %s reports %s as a backend now; the score stays with that address (score a slot NODE#INDEX to have it follow rollouts)\n", scope, a[1])
		default:
			score.Backend = slot
			what = fmt.Sprintf("%s (slot %s) scored %d; the slot keeps it across rollouts", a[1], slot, n)
		}
	}
	stored, err := st.Append(ctx, ev, store.AppendOptions{})
	if err != nil {
		return err
	}
	return printPublished(c, stored, what)
}

// slotOf is the slot NODE#INDEX that a node of scope reports addr in, or
// "" when none does.
func slotOf(ctx context.Context, st *store.Store, scope events.Scope, addr string) (string, error) {
	reports, err := st.BackendReports(ctx, scope)
	if err != nil {
		return "", fmt.Errorf("read the backends of %s: %w", scope, err)
	}
	for _, r := range reports {
		if i, ok := r.Slots[addr]; ok {
			return events.Slot(r.Node, i), nil
		}
	}
	return "", nil
}

func drainCommand() *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Category:  "publish",
		Usage:     "send a node no new work (balancers and agent checks stop routing to it)",
		ArgsUsage: "NODE",
		Description: `Publishes a "node_drained" event. Replicas keep running; 'hoist undrain' returns
the node to service.

Example:
   hoist drain node-1 --reason "kernel upgrade"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why, for the log (`TEXT`)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error { return publishNode(c, true) },
	}
}

func undrainCommand() *cli.Command {
	return &cli.Command{
		Name:      "undrain",
		Category:  "publish",
		Usage:     "return a drained node to service",
		ArgsUsage: "NODE",
		Description: `Publishes a "node_undrained" event.

Example:
   hoist undrain node-1`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error { return publishNode(c, false) },
	}
}

func publishNode(c *cli.Context, drain bool) error {
	a, err := args(c, 1, 1, "NODE")
	if err != nil {
		return err
	}
	node := a[0]
	if err := events.ValidateNodeName(node); err != nil {
		return usagef("%v", err)
	}
	var payload events.Payload = &events.NodeUndrained{}
	if drain {
		payload = &events.NodeDrained{Reason: c.String("reason")}
	}
	ev := &events.Event{Node: node, Data: payload, Actor: actorOf(c)}
	if err := ev.Validate(); err != nil {
		return err
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, publishTimeout)
	defer cancel()

	drained := false
	read := func(ctx context.Context) (events.Head, error) {
		r, err := st.NodeHistory(ctx, node)
		if err != nil {
			return events.Head{}, fmt.Errorf("read history of node %s: %w", node, err)
		}
		warnRejected(c, r)
		drained = false
		for _, e := range r.Events() {
			switch e.Kind {
			case events.KindNodeDrained:
				drained = true
			case events.KindNodeUndrained:
				drained = false
			}
		}
		return r.Head, nil
	}
	build := func() (*events.Event, error) {
		if !drain && !drained {
			return nil, usagef("node %s is not drained; nothing was published", node)
		}
		return ev, nil
	}
	stored, err := change.AppendOnHead(ctx, st, "node "+node, nil, read, build)
	if err != nil {
		return err
	}
	what := "undrained"
	if drain {
		what = "drained"
	}
	return printPublished(c, stored, what)
}
