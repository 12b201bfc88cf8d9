package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// publishCommands append one event each: deploy, scale, env, rollback,
// remove, score, drain, undrain.
func publishCommands() []*cli.Command {
	return []*cli.Command{
		deployCommand(),
		scaleCommand(),
		envCommand(),
		rollbackCommand(),
		removeCommand(),
		secretCommand(),
		scoreCommand(),
		drainCommand(),
		undrainCommand(),
	}
}

const (
	// publishTimeout bounds a whole publish: read, fold, append, retries.
	publishTimeout = 30 * time.Second
	// maxPublishAttempts bounds the re-reads after losing a race to
	// another publisher (only without --expect-revision).
	maxPublishAttempts = 25
)

// scopeChange decides the payload to publish from the scope's folded
// history, or refuses with a usage error (exit 2, nothing published).
type scopeChange func(h *projector.History) (events.Payload, error)

// publishScope is the one way a scope command publishes: it reads the
// scope's history, folds it, lets change build the payload from the fold,
// checks the event against the fold, and appends it conditionally on the
// head it read. A --expect-revision is checked first. Without one, an
// append that loses a race to another publisher is rebuilt on the new
// head and retried, a bounded number of times. It returns the stored event.
func publishScope(c *cli.Context, scope events.Scope, change scopeChange) (*events.Event, error) {
	st, closeStore, err := openStore(c)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, publishTimeout)
	defer cancel()

	var (
		h      *projector.History
		head   events.Head
		warned bool
	)
	read := func(ctx context.Context) (events.Head, error) {
		r, err := st.ScopeHistory(ctx, scope, 0)
		if err != nil {
			return events.Head{}, fmt.Errorf("read history of %s: %w", scope, err)
		}
		h, _ = projector.Fold(scope, r.Records)
		if !warned { // once, not on every retry
			warnRejected(c, r)
			warned = true
		}
		head = r.Head
		return head, nil
	}
	build := func() (*events.Event, error) {
		payload, err := change(h)
		if err != nil {
			return nil, err
		}
		ev := &events.Event{Scope: scope, Data: payload, Actor: actorOf(c)}
		if err := ev.Validate(); err != nil {
			return nil, err
		}
		if err := h.Check(ev); err != nil {
			return nil, usagef("%s: cannot publish %s at revision %d: %v; nothing was published", scope, payload.Kind(), head.Revision+1, err)
		}
		return ev, nil
	}
	return appendOnHead(ctx, st, scope.String(), expectRevision(c), read, build)
}

// appendOnHead reads a history's head (read), builds the event to append
// from what it read (build), and appends it on that head. expect, when not
// nil, must equal the head: it is checked before build runs. Without it, an
// append that loses a race is rebuilt on the new head and retried: this is
// the one layer of race retries, as the store does not retry an append on
// a given head.
func appendOnHead(ctx context.Context, st *events.Store, name string, expect *uint64,
	read func(context.Context) (events.Head, error), build func() (*events.Event, error)) (*events.Event, error) {
	for attempt := 1; ; attempt++ {
		head, err := read(ctx)
		if err != nil {
			return nil, err
		}
		if expect != nil && *expect != head.Revision {
			return nil, &events.ConflictError{Subject: name, Expected: *expect, Actual: head.Revision}
		}
		ev, err := build()
		if err != nil {
			return nil, err
		}
		stored, err := st.Append(ctx, ev, events.AppendOptions{Head: &head})
		var conflict *events.ConflictError
		switch {
		case !errors.As(err, &conflict):
			return stored, err
		case expect != nil:
			return nil, err
		case attempt < maxPublishAttempts:
			// Another publisher won: decide again on the new head, after a
			// jittered pause so that racers spread out.
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("publish to %s: %w", name, ctx.Err())
			case <-time.After(rand.N(time.Duration(attempt) * 10 * time.Millisecond)):
			}
			continue
		}
		return nil, fmt.Errorf("publish to %s: lost %d races to other publishers; try again", name, attempt)
	}
}

// warnRejected reports the messages of a history that readers skip: they
// hold their revisions, and change nothing.
func warnRejected(c *cli.Context, h *events.History) {
	for _, r := range h.Rejected() {
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

// publishedJSON is what a publish command prints with --json.
type publishedJSON struct {
	Scope    string         `json:"scope,omitempty"`
	Node     string         `json:"node,omitempty"`
	Revision uint64         `json:"revision,omitempty"`
	Kind     events.Kind    `json:"kind"`
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Actor    string         `json:"actor"`
	Data     events.Payload `json:"data"`
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
