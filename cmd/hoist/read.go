package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/view"
)

// readCommands show what the store holds: scopes, log, state.
func readCommands() []*cli.Command {
	return []*cli.Command{scopesCommand(), logCommand(), stateCommand(), statusCommand(), waitCommand()}
}

// readTimeout bounds a read command's calls to NATS.
const readTimeout = 30 * time.Second

func scopesCommand() *cli.Command {
	return &cli.Command{
		Name:      "scopes",
		Category:  "read",
		Usage:     "list every scope and its head revision",
		ArgsUsage: "[PATTERN]",
		Description: `PATTERN is client.environment.solution, each token a name or '*'. A credential
confined to some scopes (docs/auth.md) lists them with its own pattern.

Example:
   hoist scopes
   hoist scopes 'acme.prod.*' --json`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: listScopes,
	}
}

func listScopes(c *cli.Context) error {
	a, err := args(c, 0, 1, "[PATTERN]")
	if err != nil {
		return err
	}
	pattern := ""
	if len(a) == 1 {
		if pattern, err = parseScopePattern(a[0]); err != nil {
			return err
		}
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, readTimeout)
	defer cancel()
	list, err := st.Scopes(ctx, pattern)
	if err != nil {
		if errors.Is(err, store.ErrPermission) && pattern == "" {
			return fmt.Errorf("list scopes: %w\n  A credential confined to some scopes lists them with its pattern, e.g. hoist scopes 'acme.prod.*'", err)
		}
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
		Flags:  []cli.Flag{showSecretsFlag(), jsonFlag()},
		Action: showLog,
	}
}

func showLog(c *cli.Context) error {
	hist, scope, err := readScope(c)
	if err != nil {
		return err
	}
	entries := view.LogEntries(scope, hist.Records)
	if c.Bool("json") {
		for i := range entries {
			if entries[i].Data != nil && !c.Bool("show-secrets") {
				entries[i].Data = maskPayload(entries[i].Data)
			}
		}
		return writeJSON(c.App.Writer, entries)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REV\tTIME\tACTOR\tCHANGE")
	for i, r := range hist.Records {
		e := entries[i]
		change := "REJECTED: " + e.Rejected
		switch {
		case r.Err == nil && e.Skipped != "":
			change = "SKIPPED: " + e.Skipped + " (" + describe(r.Event, c.Bool("show-secrets")) + ")"
		case r.Err == nil:
			change = describe(r.Event, c.Bool("show-secrets"))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Revision, shortTime(e.Time), e.Actor, change)
	}
	return tw.Flush()
}

// showSecretsFlag turns off the masking of plain env values that look
// secret. Sealed secrets have no plain value to show.
func showSecretsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "show-secrets", Usage: "show plain env values that look secret (PASSWORD, TOKEN, …) instead of masking them"}
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
			showSecretsFlag(),
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
	hist, scope, err := readScope(c)
	if err != nil {
		return err
	}
	h, _ := projector.Fold(scope, hist.Records)
	state := h.State()
	if c.IsSet("at") {
		at := c.Uint64("at")
		if state, err = h.At(at); err != nil {
			return usagef("%s has revisions 1-%d: there is no revision %d", scope, h.Revision(), at)
		}
	}
	for _, r := range hist.Records {
		if r.Revision == state.Revision {
			e := view.NewLogEntry(r)
			state.Time, state.Actor = e.Time, e.Actor
		}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, newStateJSON(state, c.Bool("show-secrets")))
	}
	return printState(c.App.Writer, state, c.Bool("show-secrets"))
}

// readScope reads the history of the SCOPE argument. A scope without
// messages is an error (exit 1). Rejected messages are reported on stderr.
func readScope(c *cli.Context) (*store.History, events.Scope, error) {
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
	hist, err := st.ScopeHistory(ctx, scope, 0)
	if err != nil {
		return nil, scope, fmt.Errorf("read history of %s: %w", scope, err)
	}
	warnRejected(c, hist)
	if len(hist.Records) == 0 {
		return nil, scope, errNoScope(scope)
	}
	return hist, scope, nil
}

// errNoScope refuses a scope without events: bad input for every read
// command alike (exit 2).
func errNoScope(scope events.Scope) error {
	return usagef("no such scope %s: it has no events ('hoist scopes' lists them)", scope)
}

// parseScopePattern checks a scope pattern: three tokens, each a valid
// scope token or '*'.
func parseScopePattern(p string) (string, error) {
	toks := strings.Split(p, ".")
	if len(toks) != 3 {
		return "", usagef("pattern %q: want client.environment.solution, each token a name or '*'", p)
	}
	probe := make([]string, 3)
	for i, t := range toks {
		probe[i] = t
		if t == "*" {
			probe[i] = "x"
		}
	}
	if _, err := events.ParseScope(strings.Join(probe, ".")); err != nil {
		return "", usagef("pattern %q: %v", p, err)
	}
	return p, nil
}
