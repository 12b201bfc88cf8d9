package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/events/natsd"
	"github.com/hoist-dev/hoist/events/store"
)

func authCommand() *cli.Command {
	return &cli.Command{
		Name:     "auth",
		Category: "access",
		Usage:    "issue and revoke NATS credentials per role (decentralized JWT auth)",
		Description: `Keeps an operator, the SYS and HOIST accounts and the signing keys in an auth
directory, and issues one credential (a creds file) per person or process, for
one role. Servers trust the operator ('hoist server --auth DIR', or a
nats-server configured with 'hoist auth nats-config'), so issuing needs no
server at all, and revoking pushes the updated account to a running server:
no restart either way.

Roles (every permission is on subjects):
   admin     everything
   deployer  publishes config events and scores for --scopes patterns, reads them
   agent     one --node and the literal --scopes it serves
   balancer  reads backends, scores and drain state; publishes nothing
   reader    reads --scopes patterns (default *.*.*); publishes nothing

A credential's name is the actor of its events and its inbox prefix
(_INBOX_<name>); hoist sets both from the creds file.

Example:
   hoist auth init
   hoist server --auth ~/.config/hoist/auth --listen 0.0.0.0:4222
   hoist auth issue deployer --name ci-acme --scopes 'acme.prod.*'
   HOIST_NATS_CREDS=./ci-acme.creds hoist deploy acme.prod.web --image web:2
   hoist auth revoke ci-acme`,
		Subcommands: []*cli.Command{authInitCommand(), authIssueCommand(), authRevokeCommand(), authListCommand(), authNATSConfigCommand()},
	}
}

// authDirFlag is where the keys live: HOIST_AUTH_DIR, else the user's
// config directory.
func authDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "dir", Value: defaultAuthDir(), EnvVars: []string{"HOIST_AUTH_DIR"}, Usage: "auth `DIR` (keys, account JWTs, registry)"}
}

// defaultAuthDir is $XDG_CONFIG_HOME/hoist/auth, ~/.config/hoist/auth, or
// the platform's config directory.
func defaultAuthDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "hoist", "auth")
	}
	return filepath.Join(".", "hoist-auth")
}

func authInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the operator, accounts, signing key and the admin, sys and server credentials",
		Description: `Creates what is missing in the auth directory and never overwrites anything, so
running it again is safe. It writes:
   operator.jwt, accounts/*.jwt   what servers trust (copy them to every server)
   keys/*.nk                      the seeds that sign: keep them here, off the servers
   admin.creds                    full access
   server.creds                   the embedded server's own client (creates the streams)
   sys.creds                      the system account user that pushes revocations

Example:
   hoist auth init
   hoist auth init --dir /etc/hoist/auth`,
		Flags:  []cli.Flag{authDirFlag()},
		Action: runAuthInit,
	}
}

func runAuthInit(c *cli.Context) error {
	if err := authArgs(c, 0, ""); err != nil {
		return err
	}
	dir := c.String("dir")
	if dir == "" {
		return usagef("--dir is empty")
	}
	set, err := auth.Init(dir)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if len(set.Created) == 0 {
		fmt.Fprintf(w, "%s is set up already; nothing changed\n", dir)
	} else {
		fmt.Fprintf(w, "set up %s:\n", dir)
		for _, f := range set.Created {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	fmt.Fprintf(w, "operator       %s\nsystem account %s\nhoist account  %s\n", set.Operator, set.SystemAccount, set.Account)
	fmt.Fprintf(w, "next: hoist server --auth %s   (or 'hoist auth nats-config' for a nats-server)\n", dir)
	return nil
}

func authIssueCommand() *cli.Command {
	return &cli.Command{
		Name:      "issue",
		Usage:     "write a creds file for one role",
		ArgsUsage: "ROLE",
		Description: `ROLE is admin, deployer, agent, balancer or reader. The file is written 0600 to
--out (default ./NAME.creds; '-' prints it), and never over an existing file.
A name is issued again only after its earlier credential is revoked.

Example:
   hoist auth issue admin --name ops-alice
   hoist auth issue deployer --name ci-acme --scopes 'acme.prod.*,acme.staging.*'
   hoist auth issue agent --name agent-node-1 --node node-1 --scopes acme.prod.web,acme.prod.api
   hoist auth issue balancer --name lb-1 --expires 720h
   hoist auth issue reader --name dashboard --out /etc/hoist/dashboard.creds`,
		Flags: []cli.Flag{
			authDirFlag(),
			&cli.StringFlag{Name: "name", EnvVars: []string{"HOIST_AUTH_NAME"}, Usage: "credential `NAME`: a-z, 0-9, inner '-' or '_'; the actor of its events"},
			&cli.StringSliceFlag{Name: "scopes", EnvVars: []string{"HOIST_AUTH_SCOPES"}, Usage: "scope `PATTERNS` (client.env.solution, '*' for any token); an agent's are literal"},
			&cli.StringFlag{Name: "node", EnvVars: []string{"HOIST_AUTH_NODE"}, Usage: "the agent's `NODE`"},
			&cli.StringFlag{Name: "out", EnvVars: []string{"HOIST_AUTH_OUT"}, DefaultText: "./NAME.creds", Usage: "creds `FILE`, or - for stdout"},
			&cli.DurationFlag{Name: "expires", EnvVars: []string{"HOIST_AUTH_EXPIRES"}, DefaultText: "never", Usage: "lifetime `DURATION` (e.g. 720h)"},
		},
		Action: runAuthIssue,
	}
}

func runAuthIssue(c *cli.Context) error {
	if err := authArgs(c, 1, "ROLE"); err != nil {
		return err
	}
	kind, err := auth.ParseKind(c.Args().First())
	if err != nil {
		return usagef("%v", err)
	}
	role := auth.Role{Kind: kind, Name: c.String("name"), Scopes: c.StringSlice("scopes"), Node: c.String("node")}
	if role.Name == "" {
		return usagef("--name is required: the credential's name, e.g. --name ci-acme")
	}
	if role, err = role.Validate(); err != nil {
		return usagef("%v", err)
	}
	out := c.String("out")
	if out == "" {
		out = role.Name + ".creds"
	}
	if out != "-" {
		if _, err := os.Stat(out); err == nil {
			return usagef("%s exists: remove it or pick another --out", out)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	creds, u, err := auth.Issue(c.String("dir"), role, c.Duration("expires"))
	switch {
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrNameTaken):
		return usagef("%v", err)
	case err != nil:
		return err
	}
	report := c.App.Writer
	if out == "-" {
		if _, err := c.App.Writer.Write(creds); err != nil {
			return err
		}
		report = c.App.ErrWriter
	} else if err := writeCreds(out, creds); err != nil {
		return fmt.Errorf("%w (%s was issued and is registered: revoke it with 'hoist auth revoke %s')", err, u.Name, u.Name)
	}
	perms, _ := auth.Permissions(role) // valid: Issue checked it
	if out == "-" {
		fmt.Fprintf(report, "issued %s\n", role)
	} else {
		fmt.Fprintf(report, "wrote %s (0600): %s\n", out, role)
	}
	expires := "never"
	if !u.Expires.IsZero() {
		expires = u.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(report, "  public key %s, expires %s\n", u.PublicKey, expires)
	fmt.Fprintf(report, "  may publish to:\n")
	for _, s := range perms.Pub.Allow {
		fmt.Fprintf(report, "    %s\n", s)
	}
	fmt.Fprintf(report, "  may subscribe to: %s\n", strings.Join(perms.Sub.Allow, ", "))
	if out != "-" {
		fmt.Fprintf(report, "use it with: HOIST_NATS_CREDS=%s hoist ...\n", out)
	}
	return nil
}

// writeCreds creates a 0600 file that must not exist.
func writeCreds(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	return f.Close()
}

func authRevokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "revoke a credential and push the change to the running server",
		ArgsUsage: "NAME",
		Description: `Adds the credential's keys to the account's revocations, signs the account
again, and pushes it (as sys.creds from the auth directory) to the server at
--nats-url / HOIST_NATS_URL. Servers apply it at once: the credential's
connections are closed and it cannot connect again; in a cluster the servers
pass it on. If no server can be reached, the revocation is kept in the
directory: run the same command again once one is up.

Example:
   hoist auth revoke ci-acme
   HOIST_NATS_URL=nats://n1:4222,nats://n2:4222 hoist auth revoke agent-node-1
   hoist auth revoke ci-acme --no-push   # offline; push later with the same command`,
		Flags: []cli.Flag{
			authDirFlag(),
			&cli.BoolFlag{Name: "no-push", EnvVars: []string{"HOIST_AUTH_NO_PUSH"}, Usage: "only record the revocation in the directory"},
		},
		Action: runAuthRevoke,
	}
}

func runAuthRevoke(c *cli.Context) error {
	if err := authArgs(c, 1, "NAME"); err != nil {
		return err
	}
	dir, name := c.String("dir"), c.Args().First()
	before, err := auth.Users(dir)
	if err != nil {
		return err
	}
	already := true
	for _, u := range before {
		if u.Name == name && u.Revoked.IsZero() {
			already = false
		}
	}
	tok, err := auth.Revoke(dir, name)
	if errors.Is(err, auth.ErrUnknownUser) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	w := c.App.Writer
	if already {
		fmt.Fprintf(w, "%s was revoked already\n", name)
	} else {
		fmt.Fprintf(w, "revoked %s in %s\n", name, dir)
	}
	if c.Bool("no-push") {
		fmt.Fprintf(w, "not pushed: servers accept %s until you run 'hoist auth revoke %s' against one\n", name, name)
		return nil
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	o := connectOptions(c, "hoist auth revoke", false, log)
	o.CredsFile, o.User, o.Password, o.Token, o.NKeyFile = filepath.Join(dir, auth.SysCreds), "", "", "", ""
	nc, err := store.Connect(o)
	if err != nil {
		// %v: this message, not the generic one for an unreachable server.
		return fmt.Errorf("push the revocation: %v\n  It is recorded in %s, but servers accept %s until it is pushed: run 'hoist auth revoke %s' again once NATS is up", err, dir, name, name)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	if err := auth.Push(ctx, nc, tok); err != nil {
		return fmt.Errorf("%w\n  The revocation is recorded in %s; run 'hoist auth revoke %s' again to retry the push", err, dir, name)
	}
	fmt.Fprintf(w, "pushed to %s: %s's connections are closed and it cannot connect again\n", nc.ConnectedUrlRedacted(), name)
	return nil
}

func authListCommand() *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list the issued credentials",
		Description: `Example:
   hoist auth ls
   hoist auth ls --json`,
		Flags:  []cli.Flag{authDirFlag(), jsonFlag()},
		Action: runAuthList,
	}
}

func runAuthList(c *cli.Context) error {
	if err := authArgs(c, 0, ""); err != nil {
		return err
	}
	users, err := auth.Users(c.String("dir"))
	if err != nil {
		return err
	}
	now := time.Now()
	if c.Bool("json") {
		type userJSON struct {
			auth.User
			State string `json:"state"`
		}
		out := make([]userJSON, len(users))
		for i, u := range users {
			out[i] = userJSON{User: u, State: userState(u, now)}
		}
		return writeJSON(c.App.Writer, out)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tNODE\tSCOPES\tISSUED\tEXPIRES\tSTATE")
	for _, u := range users {
		node, scopes, expires := dash(u.Node), dash(strings.Join(u.Scopes, ",")), "never"
		if !u.Expires.IsZero() {
			expires = u.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Kind, node, scopes, u.Issued.Format(time.RFC3339), expires, userState(u, now))
	}
	return tw.Flush()
}

func userState(u auth.User, now time.Time) string {
	switch {
	case !u.Revoked.IsZero():
		return "revoked " + u.Revoked.Format(time.RFC3339)
	case !u.Live(now):
		return "expired"
	}
	return "live"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func authNATSConfigCommand() *cli.Command {
	return &cli.Command{
		Name:  "nats-config",
		Usage: "print the nats-server configuration that trusts this operator",
		Description: `Prints operator, system_account, a full resolver and its preload, and JetStream,
for a nats-server you run yourself (2.11 or newer). Add listen, cluster and TLS
settings of your own. The JWTs are inlined, so the output stands alone.

Example:
   hoist auth nats-config --resolver-dir /var/lib/nats/jwt > /etc/nats/hoist-auth.conf
   # in nats-server.conf:  include hoist-auth.conf`,
		Flags: []cli.Flag{
			authDirFlag(),
			&cli.StringFlag{Name: "resolver-dir", Value: "/var/lib/nats/jwt", EnvVars: []string{"HOIST_AUTH_RESOLVER_DIR"}, Usage: "`DIR` where the server keeps account JWTs"},
			&cli.StringFlag{Name: "store-dir", Value: "/var/lib/nats/jetstream", EnvVars: []string{"HOIST_AUTH_STORE_DIR"}, Usage: "JetStream store `DIR`"},
		},
		Action: runAuthNATSConfig,
	}
}

func runAuthNATSConfig(c *cli.Context) error {
	if err := authArgs(c, 0, ""); err != nil {
		return err
	}
	cfg, err := auth.NATSConfig(c.String("dir"), auth.NATSConfigOptions{ResolverDir: c.String("resolver-dir"), StoreDir: c.String("store-dir")})
	if err != nil {
		return err
	}
	_, err = io.WriteString(c.App.Writer, cfg)
	return err
}

// authArgs checks a subcommand's positional arguments.
func authArgs(c *cli.Context, n int, names string) error {
	if c.NArg() == n {
		return nil
	}
	cmd := "auth " + c.Command.Name
	return usagef("usage: hoist %s %s (got %d argument%s; see 'hoist %s --help')", cmd, names, c.NArg(), plural(c.NArg()), cmd)
}

// serverAuth prepares JWT auth for 'hoist server --auth DIR': the
// operator and accounts from the auth directory, and a full resolver in
// the server's data directory, so that revocations pushed while it runs
// outlive a restart.
func serverAuth(dir, dataDir string) (*natsd.Auth, error) {
	set, err := auth.ServerOptions(dir, filepath.Join(dataDir, "jwt"))
	if err != nil {
		return nil, err
	}
	return &natsd.Auth{Operators: set.Operators, SystemAccount: set.SystemAccount, Resolver: set.Resolver, ClientCreds: set.Creds}, nil
}
