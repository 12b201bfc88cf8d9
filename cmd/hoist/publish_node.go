package main

import (
	"context"
	"fmt"
	"strings"

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
	reports, err := st.BackendReports(ctx, scope)
	if err != nil {
		return fmt.Errorf("read the backends of %s: %w", scope, err)
	}
	bs := backendsOf(reports)
	switch slot, known := bs.find(a[1]); {
	case !known:
		// Still published: a score may be set before its replica starts.
		fmt.Fprintf(c.App.ErrWriter, "hoist: warning: no node of %s reports a backend %s now; publishing the score anyway. Backends: %s\n", scope, a[1], bs)
	case slot != "" && !c.Bool("by-address"):
		score.Backend = slot
		what = fmt.Sprintf("%s (slot %s) scored %d; the slot keeps it across rollouts", a[1], slot, n)
	}
	stored, err := st.Append(ctx, ev, store.AppendOptions{})
	if err != nil {
		return err
	}
	return printPublished(c, stored, what)
}

// backendList is what the nodes of a scope report: each address and the
// slot NODE#INDEX it serves ("" when the report names none).
type backendList []struct{ addr, slot string }

func backendsOf(reports []*events.BackendsReport) backendList {
	var bs backendList
	for _, r := range reports {
		for _, addr := range r.Backends {
			slot := ""
			if i, ok := r.Slots[addr]; ok {
				slot = events.Slot(r.Node, i)
			}
			if i, ok := r.Canary[addr]; ok {
				slot = events.CanarySlot(r.Node, i)
			}
			bs = append(bs, struct{ addr, slot string }{addr, slot})
		}
	}
	return bs
}

// find says whether backend (an address or a slot) is reported, and for an
// address the slot it serves.
func (bs backendList) find(backend string) (slot string, known bool) {
	for _, b := range bs {
		switch backend {
		case b.slot:
			return "", true
		case b.addr:
			return b.slot, true
		}
	}
	return "", false
}

// String lists the backends as "node-1#0 (127.0.0.1:31001), …" for a
// message, or says there are none.
func (bs backendList) String() string {
	if len(bs) == 0 {
		return "none reported (is an agent running the scope? see 'hoist status')"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = b.addr
		if b.slot != "" {
			parts[i] = b.slot + " (" + b.addr + ")"
		}
	}
	return strings.Join(parts, ", ")
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
