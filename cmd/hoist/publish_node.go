package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
)

// score, drain and undrain: the publishes that are not a scope's revision.

func scoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "score",
		Category:  "publish",
		Usage:     "set the score (0-100) of one backend of a scope; 0 = no new requests",
		ArgsUsage: "SCOPE BACKEND SCORE",
		Description: `Publishes a "backend_scored" event. BACKEND is host:port as 'hoist status' shows it.
Balancers weight traffic by the latest score of each backend. Scores do not
change the scope's revision.

Example:
   hoist score acme.prod.web 127.0.0.1:31001 75
   hoist score acme.prod.web 127.0.0.1:31001 0     # drain one replica`,
		Flags:  []cli.Flag{jsonFlag()},
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
	ev := &events.Event{Scope: scope, Data: &events.BackendScored{Backend: a[1], Score: n}, Actor: actorOf(c)}
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
	stored, err := st.Append(ctx, ev, events.AppendOptions{})
	if err != nil {
		return err
	}
	return printPublished(c, stored, fmt.Sprintf("%s scored %d", a[1], n))
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
