package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

func secretCommand() *cli.Command {
	return &cli.Command{
		Name:     "secret",
		Category: "publish",
		Usage:    "set, list, grant and rotate a scope's sealed secrets",
		Description: `Secrets are events that carry only ciphertext. Each scope has a key pair; the
CLI seals a value to the scope's public key and can never open it again. The
scope's private key reaches a node only sealed to that node's own key, by an
event a granted node publishes, so no credential of the CLI, of CI or of a
reader opens a secret: only the agents an admin granted.

A replica sees a secret as an environment variable of its name, or as a file
(--as-file PATH, docker runtime). A change rolls the replicas, health-gated
like 'hoist env'.

Start by granting a node (an admin's credential): its agent makes the scope's
key. Then set values (a deployer's credential will do).

Example:
   hoist secret grant acme.prod.web node-1
   printf %s "$DB_PASSWORD" | hoist secret set acme.prod.web DB_PASSWORD
   hoist secret set acme.prod.web TLS_KEY --from-file key.pem --as-file /run/secrets/tls.key
   hoist secret ls acme.prod.web
   hoist secret grant acme.prod.web node-2     # node-2 opens the existing secrets
   hoist secret revoke acme.prod.web node-1    # and the scope gets a new key
   hoist secret rotate acme.prod.web

See docs/secrets.md.`,
		Subcommands: []*cli.Command{
			secretSetCommand(), secretListCommand(), secretRemoveCommand(),
			secretGrantCommand(), secretRevokeCommand(), secretRotateCommand(),
		},
	}
}

func secretSetCommand() *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "seal a value to the scope's key and publish it",
		ArgsUsage: "SCOPE NAME [--from-file FILE] [--as-file PATH]",
		Description: `Reads the value from standard input (one trailing newline is dropped), or from
--from-file as it is; never from the command line, where 'ps' and shell
history would show it. On a terminal it asks without echoing.

Example:
   printf %s "$DB_PASSWORD" | hoist secret set acme.prod.web DB_PASSWORD
   hoist secret set acme.prod.web TLS_KEY --from-file key.pem --as-file /run/secrets/tls.key`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from-file", Usage: "read the value from `FILE`, byte for byte"},
			&cli.StringFlag{Name: "as-file", Usage: "give replicas the secret as a file at `PATH` (absolute, docker runtime) instead of an env var"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: secretSetAction,
	}
}

func secretSetAction(c *cli.Context) error {
	scope, name, err := scopeAndName(c, "SCOPE NAME")
	if err != nil {
		return err
	}
	file := c.String("as-file")
	if file != "" {
		if err := events.ValidateSecretFile(file); err != nil {
			return usagef("--as-file: %v", err)
		}
	}
	value, err := readSecretValue(c, name)
	if err != nil {
		return err
	}
	defer clear(value)
	if file == "" {
		if err := events.ValidateEnv(name, string(value)); err != nil {
			return usagef("%v (a binary value can go --as-file)", err)
		}
	}
	ev, err := publishScope(c, scope, func(h *projector.History) (events.Payload, error) {
		if err := requireDeployed(scope, h); err != nil {
			return nil, err
		}
		key := h.Keyring().Current()
		if key == nil {
			return nil, usagef("%s has no secret key yet: an admin grants a node first (hoist secret grant %s NODE), whose agent makes it; nothing was published", scope, scope)
		}
		pub, err := secrets.ParsePublicKey(key.Public)
		if err != nil {
			return nil, fmt.Errorf("%s: key v%d in the log: %w", scope, key.Version, err)
		}
		sealed, err := secrets.Seal(pub, value)
		if err != nil {
			return nil, usagef("%s: %v; nothing was published", name, err)
		}
		if _, plain := h.State().Spec.Env[name]; plain {
			fmt.Fprintf(c.App.ErrWriter, "hoist: warning: %s is also a plain env var of %s, which the secret overrides; drop it: hoist env %s --unset %s\n", name, scope, scope, name)
		}
		return &events.SecretSet{Name: name, Secret: events.Secret{Key: key.Version, Sealed: sealed, File: file}}, nil
	})
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

// readSecretValue reads a secret's value from --from-file, a terminal
// prompt, or standard input.
func readSecretValue(c *cli.Context, name string) ([]byte, error) {
	if path := c.String("from-file"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--from-file: %v", err)
		}
		return checkSecretSize(b)
	}
	in := c.App.Reader
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.App.ErrWriter, "value of %s (not echoed): ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return nil, fmt.Errorf("read the value: %w", err)
		}
		return checkSecretSize(b)
	}
	b, err := io.ReadAll(io.LimitReader(in, secrets.MaxValue+2))
	if err != nil {
		return nil, fmt.Errorf("read the value from standard input: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return checkSecretSize(b)
}

func checkSecretSize(b []byte) ([]byte, error) {
	switch {
	case len(b) > secrets.MaxValue:
		return nil, usagef("the value is over %d bytes; nothing was published", secrets.MaxValue)
	case len(b) == 0:
		return nil, usagef("the value is empty (pipe it in: printf %%s \"$VALUE\" | hoist secret set SCOPE NAME); nothing was published")
	}
	return b, nil
}

func secretRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "drop a secret (the replicas roll without it)",
		ArgsUsage: "SCOPE NAME",
		Flags:     []cli.Flag{expectRevisionFlag(), jsonFlag()},
		Action: func(c *cli.Context) error {
			scope, name, err := scopeAndName(c, "SCOPE NAME")
			if err != nil {
				return err
			}
			ev, err := publishScope(c, scope, func(h *projector.History) (events.Payload, error) {
				if err := requireDeployed(scope, h); err != nil {
					return nil, err
				}
				if _, ok := h.State().Spec.Secrets[name]; !ok {
					return nil, usagef("%s has no secret %s ('hoist secret ls %s'); nothing was published", scope, name, scope)
				}
				return &events.SecretRemoved{Name: name}, nil
			})
			if err != nil {
				return err
			}
			return printPublished(c, ev, summarize(ev))
		},
	}
}

func scopeAndName(c *cli.Context, usage string) (events.Scope, string, error) {
	a, err := args(c, 2, 2, usage)
	if err != nil {
		return events.Scope{}, "", err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return events.Scope{}, "", err
	}
	return scope, a[1], nil
}

func secretListCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list a scope's secrets (names, versions, who and when; never values) and its grants",
		ArgsUsage: "SCOPE",
		Flags:     []cli.Flag{jsonFlag()},
		Action:    secretListAction,
	}
}

type secretRow struct {
	Name     string    `json:"name"`
	File     string    `json:"file,omitempty"`
	Key      int       `json:"key"`
	Revision uint64    `json:"revision"`
	Actor    string    `json:"actor"`
	Time     time.Time `json:"time"`
}

type grantRow struct {
	Node     string `json:"node"`
	NodeKey  string `json:"node_key"`
	Holds    int    `json:"holds_key,omitempty"` // 0: waiting for the key
	Revision uint64 `json:"revision"`
}

func secretListAction(c *cli.Context) error {
	a, err := args(c, 1, 1, "SCOPE")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := context.WithTimeout(c.Context, publishTimeout)
	defer cancel()
	r, err := st.ScopeHistory(ctx, scope, 0)
	if err != nil {
		return fmt.Errorf("read history of %s: %w", scope, err)
	}
	h, _ := projector.Fold(scope, r.Records)
	rows := secretRows(h, r.Events())
	ring := h.Keyring()
	var grants []grantRow
	for _, node := range slices.Sorted(maps.Keys(ring.Grants)) {
		g := ring.Grants[node]
		row := grantRow{Node: node, NodeKey: g.NodeKey, Revision: g.Revision}
		if cur := ring.Current(); cur != nil && !slices.Contains(ring.Pending(), node) {
			row.Holds = cur.Version
		}
		grants = append(grants, row)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, struct {
			Scope   string      `json:"scope"`
			Key     int         `json:"key"`
			Secrets []secretRow `json:"secrets"`
			Grants  []grantRow  `json:"grants"`
			Rotate  bool        `json:"rotation_due,omitempty"`
		}{scope.String(), keyVersion(ring), rows, grants, ring.Rotate != 0})
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SECRET\tAS\tKEY\tREVISION\tBY\tWHEN")
	for _, s := range rows {
		as := "env"
		if s.File != "" {
			as = s.File
		}
		fmt.Fprintf(w, "%s\t%s\tv%d\t%d\t%s\t%s\n", s.Name, as, s.Key, s.Revision, s.Actor, s.Time.Local().Format(time.DateTime))
	}
	w.Flush()
	fmt.Fprintln(c.App.Writer)
	w = tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tNODE KEY\tHOLDS\tGRANTED AT")
	for _, g := range grants {
		holds := "waiting for the key"
		if g.Holds > 0 {
			holds = fmt.Sprintf("key v%d", g.Holds)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\trevision %d\n", g.Node, g.NodeKey[:12]+"…", holds, g.Revision)
	}
	w.Flush()
	switch {
	case len(grants) == 0:
		fmt.Fprintf(c.App.Writer, "no node is granted: hoist secret grant %s NODE\n", scope)
	case ring.Rotate != 0:
		fmt.Fprintf(c.App.Writer, "a new key is due (revision %d): a granted node's agent makes it\n", ring.Rotate)
	}
	return nil
}

// secretRows describes the current spec's secrets: each by the event that
// set its value, or that resealed it to its key.
func secretRows(h *projector.History, evs []*events.Event) []secretRow {
	spec := h.State().Spec
	if spec == nil {
		return nil
	}
	var rows []secretRow
	for _, name := range slices.Sorted(maps.Keys(spec.Secrets)) {
		s := spec.Secrets[name]
		row := secretRow{Name: name, File: s.File, Key: s.Key}
		for _, e := range slices.Backward(evs) {
			if setsSealed(e, name, s.Sealed) {
				row.Revision, row.Actor, row.Time = e.Revision, e.Actor, e.Time
				break
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func setsSealed(e *events.Event, name, sealed string) bool {
	switch d := e.Data.(type) {
	case *events.SecretSet:
		return d.Name == name && d.Sealed == sealed
	case *events.SecretKey:
		return d.Resealed[name] == sealed
	}
	return false
}
