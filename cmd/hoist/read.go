package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// readCommands show what the store holds: scopes, log, state.
func readCommands() []*cli.Command {
	return []*cli.Command{scopesCommand(), logCommand(), stateCommand(), statusCommand(), waitCommand()}
}

// readTimeout bounds a read command's calls to NATS.
const readTimeout = 30 * time.Second

func scopesCommand() *cli.Command {
	return &cli.Command{
		Name:     "scopes",
		Category: "read",
		Usage:    "list every scope and its head revision",
		Description: `Example:
   hoist scopes
   hoist scopes --json`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: listScopes,
	}
}

func listScopes(c *cli.Context) error {
	if _, err := args(c, 0, 0, ""); err != nil {
		return err
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, readTimeout)
	defer cancel()
	list, err := st.Scopes(ctx)
	if err != nil {
		return fmt.Errorf("list scopes: %w", err)
	}
	if c.Bool("json") {
		out := make([]scopeJSON, len(list))
		for i, s := range list {
			out[i] = scopeJSON{Scope: s.Scope.String(), Revision: s.Revision}
		}
		return writeJSON(c.App.Writer, out)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "no scopes yet: publish one with 'hoist deploy SCOPE --image IMAGE'")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tREVISION")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%d\n", s.Scope, s.Revision)
	}
	return tw.Flush()
}

type scopeJSON struct {
	Scope    string `json:"scope"`
	Revision uint64 `json:"revision"`
}

func logCommand() *cli.Command {
	return &cli.Command{
		Name:      "log",
		Category:  "read",
		Usage:     "show a scope's events, oldest first",
		ArgsUsage: "SCOPE",
		Description: `Events that cannot be read are reported on stderr and skipped.

Example:
   hoist log acme.prod.web
   hoist log acme.prod.web --json | jq '.[] | select(.kind == "deployed")'`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: showLog,
	}
}

func showLog(c *cli.Context) error {
	read, _, err := readScope(c)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := make([]logEntryJSON, len(read.Events))
		for i, e := range read.Events {
			out[i] = logEntryJSON{Revision: e.Revision, Kind: e.Kind, Time: e.Time, Actor: e.Actor, Data: e.Data}
		}
		return writeJSON(c.App.Writer, out)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REV\tTIME\tACTOR\tCHANGE")
	for _, e := range read.Events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Revision, shortTime(e.Time), e.Actor, summarize(e))
	}
	return tw.Flush()
}

// logEntryJSON is one element of 'hoist log --json'.
type logEntryJSON struct {
	Revision uint64         `json:"revision"`
	Kind     events.Kind    `json:"kind"`
	Time     time.Time      `json:"time"`
	Actor    string         `json:"actor"`
	Data     events.Payload `json:"data"`
}

func stateCommand() *cli.Command {
	return &cli.Command{
		Name:      "state",
		Category:  "read",
		Usage:     "show a scope's desired state, now or at an earlier revision",
		ArgsUsage: "SCOPE [--at REVISION]",
		Description: `The state is the fold of the scope's events up to the revision.

Example:
   hoist state acme.prod.web
   hoist state acme.prod.web --at 3 --json`,
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "at", DefaultText: "the head", Usage: "show the state right after `REVISION`"},
			jsonFlag(),
		},
		Action: showState,
	}
}

func showState(c *cli.Context) error {
	if c.IsSet("at") {
		if err := parsePositiveRevision("--at", c.Uint64("at")); err != nil {
			return err
		}
	}
	read, scope, err := readScope(c)
	if err != nil {
		return err
	}
	h, skips := projector.Fold(scope, read.Events)
	warnSkips(c, skips)
	state := h.State()
	if c.IsSet("at") {
		at := c.Uint64("at")
		if state, err = h.At(at); err != nil {
			return usagef("%s has revisions 1-%d: there is no revision %d", scope, h.Revision(), at)
		}
	}
	for _, e := range read.Events {
		if e.Revision == state.Revision {
			state.Time, state.Actor = e.Time, e.Actor
		}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, newStateJSON(state))
	}
	return printState(c.App.Writer, state)
}

// readScope reads the history of the SCOPE argument. A scope without
// events is an error (exit 1). Unreadable events are reported on stderr.
func readScope(c *cli.Context) (*events.Read, events.Scope, error) {
	a, err := args(c, 1, 1, "SCOPE")
	if err != nil {
		return nil, events.Scope{}, err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return nil, events.Scope{}, err
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return nil, scope, err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, readTimeout)
	defer cancel()
	read, err := st.ScopeHistory(ctx, scope, 0)
	if err != nil {
		return nil, scope, fmt.Errorf("read history of %s: %w", scope, err)
	}
	warnUnreadable(c, read.Skipped)
	if len(read.Events) == 0 {
		if len(read.Skipped) > 0 {
			return nil, scope, fmt.Errorf("%s has no readable events", scope)
		}
		return nil, scope, fmt.Errorf("no such scope %s ('hoist scopes' lists them)", scope)
	}
	return read, scope, nil
}
