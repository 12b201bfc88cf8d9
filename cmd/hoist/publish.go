package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/secrets"
	"github.com/hoist-dev/hoist/view"
)

// publishCommands append one event each: deploy, scale, env, rollback,
// remove, pause, resume, maintenance, score, drain, undrain.
func publishCommands() []*cli.Command {
	return []*cli.Command{
		deployCommand(),
		scaleCommand(),
		envCommand(),
		rollbackCommand(),
		removeCommand(),
		canaryCommand(),
		promoteCommand(),
		abortCommand(),
		pauseCommand(),
		resumeCommand(),
		maintenanceCommand(),
		secretCommand(),
		scoreCommand(),
		drainCommand(),
		undrainCommand(),
	}
}

// publishTimeout bounds a whole publish: read, fold, append, retries.
const publishTimeout = 30 * time.Second

// scopeChange decides the payload to publish from the scope's folded
// history, or refuses (exit 2, nothing published).
type scopeChange = change.Builder

// publishScope is the one way a scope command publishes: change.Publish
// (shared with the HTTP API) with the CLI's connection, actor,
// --expect-revision and warnings. It returns the stored event.
func publishScope(c *cli.Context, scope events.Scope, build scopeChange) (*events.Event, error) {
	st, closeStore, err := openStore(c)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, publishTimeout)
	defer cancel()
	return change.Publish(ctx, st, change.Request{
		Scope: scope, Actor: actorOf(c), Expect: expectRevision(c), Build: build,
		Rejected: func(rs []events.Record) { warnRejectedRecords(c, rs) },
	})
}

// warnRejected reports the messages of a history that readers skip: they
// hold their revisions, and change nothing.
func warnRejected(c *cli.Context, h *store.History) { warnRejectedRecords(c, h.Rejected()) }

func warnRejectedRecords(c *cli.Context, rs []events.Record) {
	for _, r := range rs {
		fmt.Fprintf(c.App.ErrWriter, "hoist: warning: revision %d changes nothing: %v\n", r.Revision, r.Err)
	}
}

// warnPlainSecrets points at 'hoist secret set' for plain variables that
// look secret: their values stay in the log, readable, for good.
func warnPlainSecrets(c *cli.Context, scope events.Scope, env map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if secrets.LooksSecret(k, env[k]) {
			fmt.Fprintf(c.App.ErrWriter, "hoist: warning: %s looks like a secret, and a plain env value stays readable in the log for good; seal it instead: printf %%s \"$VALUE\" | hoist secret set %s %s\n", k, scope, k)
		}
	}
}

// printPublished reports a stored event: one line for people, or JSON.
func printPublished(c *cli.Context, ev *events.Event, what string) error {
	w := c.App.Writer
	if c.Bool("json") {
		return writeJSON(w, publishedJSON{
			Scope: ev.Scope.String(), Node: ev.Node, Revision: ev.Revision, Kind: ev.Kind,
			ID: ev.ID, Time: ev.Time, Actor: ev.Actor, Data: maskPayload(ev.Data),
		})
	}
	switch {
	case ev.Kind == events.KindBackendScored:
		_, err := fmt.Fprintf(w, "%s: %s\n", ev.Scope, what)
		return err
	case ev.Kind.IsNodeKind():
		_, err := fmt.Fprintf(w, "node %s: %s (node revision %d)\n", ev.Node, what, ev.Revision)
		return err
	}
	_, err := fmt.Fprintf(w, "%s: revision %d (%s)\n", ev.Scope, ev.Revision, what)
	return err
}

// publishedJSON is what a publish command prints with --json, and the
// API answers a write with.
type publishedJSON = view.Published

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
