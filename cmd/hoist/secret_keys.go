package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// The secret commands that act on a scope's keys rather than its values:
// grant, revoke and rotate. Each publishes its event, then waits for a
// granted agent to do its part (make, hand on or rotate the key).

func keyWaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "wait up to `D` for a granted node to do its key work (0: do not wait)"}
}

func secretGrantCommand() *cli.Command {
	return &cli.Command{
		Name:      "grant",
		Usage:     "let a node open the scope's secrets (an admin's credential)",
		ArgsUsage: "SCOPE NODE",
		Description: `Publishes a grant for the key the node's agent announced (it does so at its
first start). A node that holds the scope's key then hands it to the new node,
sealed to the new node's key; the first node granted makes the key. The
command waits until the node holds the key.

Example:
   hoist secret grant acme.prod.web node-2`,
		Flags:  []cli.Flag{keyWaitFlag(), expectRevisionFlag(), jsonFlag()},
		Action: secretGrantAction,
	}
}

func secretGrantAction(c *cli.Context) error {
	scope, node, err := scopeAndName(c, "SCOPE NODE")
	if err != nil {
		return err
	}
	if err := events.ValidateNodeName(node); err != nil {
		return usagef("%v", err)
	}
	key, actor, err := announcedNodeKey(c, node)
	if err != nil {
		return err
	}
	ev, err := publishScope(c, scope, func(h *projector.History) (events.Payload, error) {
		if g, ok := h.Keyring().Grants[node]; ok && g.NodeKey == key && g.Actor == actor {
			return nil, usagef("node %s is granted %s already (revision %d); nothing was published", node, scope, g.Revision)
		}
		return &events.SecretGranted{Node: node, NodeKey: key, Actor: actor}, nil
	})
	if err != nil {
		return err
	}
	if err := printPublished(c, ev, summarize(ev)); err != nil {
		return err
	}
	return waitKeys(c, scope, fmt.Sprintf("node %s to hold the key", node), func(ring *projector.Keyring) (string, bool) {
		cur := ring.Current()
		if cur == nil || slices.Contains(ring.Pending(), node) {
			return "", false
		}
		return fmt.Sprintf("node %s holds key v%d of %s", node, cur.Version, scope), true
	})
}

// announcedNodeKey is the key a node's agent announced last, and the actor
// that announced it.
func announcedNodeKey(c *cli.Context, node string) (key, actor string, err error) {
	st, closeStore, err := openStore(c)
	if err != nil {
		return "", "", err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, publishTimeout)
	defer cancel()
	h, err := st.NodeHistory(ctx, node)
	if err != nil {
		return "", "", fmt.Errorf("read history of node %s: %w", node, err)
	}
	for _, e := range h.Events() {
		if k, ok := e.Data.(*events.NodeKey); ok {
			key, actor = k.Public, e.Actor
		}
	}
	if key == "" {
		return "", "", usagef("node %s has announced no key: start its agent once, connected to this NATS (it announces its key at start); nothing was published", node)
	}
	return key, actor, nil
}

func secretRevokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "take a node's grant back; the scope gets a new key it is not given",
		ArgsUsage: "SCOPE NODE",
		Description: `The revoked node keeps what it has seen: change the values themselves too if it
may have leaked them.`,
		Flags: []cli.Flag{keyWaitFlag(), expectRevisionFlag(), jsonFlag()},
		Action: func(c *cli.Context) error {
			scope, node, err := scopeAndName(c, "SCOPE NODE")
			if err != nil {
				return err
			}
			var before int
			ev, err := publishScope(c, scope, func(h *projector.History) (events.Payload, error) {
				if _, ok := h.Keyring().Grants[node]; !ok {
					return nil, usagef("node %s has no grant of %s; nothing was published", node, scope)
				}
				before = keyVersion(h.Keyring())
				return &events.SecretRevoked{Node: node}, nil
			})
			if err != nil {
				return err
			}
			if err := printPublished(c, ev, summarize(ev)); err != nil {
				return err
			}
			if before == 0 {
				return nil
			}
			return waitNewKey(c, scope, before)
		},
	}
}

func secretRotateCommand() *cli.Command {
	return &cli.Command{
		Name:      "rotate",
		Usage:     "make a new scope key, reseal every secret to it and roll the replicas",
		ArgsUsage: "SCOPE",
		Flags:     []cli.Flag{keyWaitFlag(), expectRevisionFlag(), jsonFlag()},
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "SCOPE")
			if err != nil {
				return err
			}
			scope, err := parseScope(a[0])
			if err != nil {
				return err
			}
			var before int
			ev, err := publishScope(c, scope, func(h *projector.History) (events.Payload, error) {
				if before = keyVersion(h.Keyring()); before == 0 {
					return nil, usagef("%s has no secret key to rotate yet; nothing was published", scope)
				}
				return &events.SecretRotate{}, nil
			})
			if err != nil {
				return err
			}
			if err := printPublished(c, ev, summarize(ev)); err != nil {
				return err
			}
			return waitNewKey(c, scope, before)
		},
	}
}

func keyVersion(ring *projector.Keyring) int {
	if cur := ring.Current(); cur != nil {
		return cur.Version
	}
	return 0
}

func waitNewKey(c *cli.Context, scope events.Scope, before int) error {
	return waitKeys(c, scope, fmt.Sprintf("a key newer than v%d", before), func(ring *projector.Keyring) (string, bool) {
		cur := ring.Current()
		if cur == nil || cur.Version <= before {
			return "", false
		}
		return fmt.Sprintf("node %s made key v%d at revision %d and resealed the secrets; the replicas roll (hoist wait %s)", cur.Node, cur.Version, cur.Revision, scope), true
	})
}

// waitKeys polls the scope's keyring until done says so, for --timeout.
func waitKeys(c *cli.Context, scope events.Scope, what string, done func(*projector.Keyring) (string, bool)) error {
	timeout := c.Duration("timeout")
	if timeout <= 0 || c.Bool("json") {
		return nil
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	for {
		r, err := st.ScopeHistory(ctx, scope, 0)
		if err == nil {
			h, _ := projector.Fold(scope, r.Records)
			if msg, ok := done(h.Keyring()); ok {
				_, err := fmt.Fprintf(c.App.Writer, "%s: %s\n", scope, msg)
				return err
			}
		}
		select {
		case <-ctx.Done():
			return &exitErr{code: exitWait, err: fmt.Errorf("%s: waited %v for %s; the event is published, but no granted node's agent has acted on it. Is one running and connected? ('hoist status %s')", scope, timeout, what, scope)}
		case <-time.After(200 * time.Millisecond):
		}
	}
}
