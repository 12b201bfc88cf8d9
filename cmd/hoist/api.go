package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/api"
	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/events/store"
)

// DefaultAPIListen is where 'hoist api' and 'hoist dev' serve the API and
// the dashboard.
const DefaultAPIListen = "127.0.0.1:8070"

func apiCommand() *cli.Command {
	// HOIST_API_*: a plain HOIST_LISTEN would also reach other commands.
	env := func(name string) []string {
		return []string{"HOIST_API_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	return &cli.Command{
		Name:     "api",
		Category: "run",
		Usage:    "serve the HTTP API and the live dashboard",
		Description: `Serves the HTTP API (/v1/..., described at /v1/openapi.json), the dashboard at /,
and /metrics. It follows the event streams the way the balancer does, and
publishes writes with the same checks and messages as the CLI.

Requests carry a bearer token from --tokens (make one with 'hoist api token');
each token has a role of docs/auth.md and is refused what a NATS credential of
that role would be. Without a token a request is refused (401), unless
--public-read lets anyone read. The API's own NATS credential (HOIST_NATS_*)
must be an admin's for writes: it publishes under each token's name.

Example:
   hoist api token --tokens tokens.toml --name ci-acme --role deployer --scopes 'acme.prod.*'
   HOIST_NATS_CREDS=api.creds hoist api --listen 0.0.0.0:8070 --tokens tokens.toml
   curl -H "Authorization: Bearer $TOKEN" -X POST 127.0.0.1:8070/v1/scopes/acme.prod.web/scale -d '{"replicas":5}'`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", EnvVars: env("listen"), Value: DefaultAPIListen, Usage: "HTTP `ADDR` of the API and the dashboard"},
			&cli.StringFlag{Name: "tokens", EnvVars: env("tokens"), Usage: "token `FILE` (TOML; 'hoist api token' writes it; read again when it changes)"},
			&cli.BoolFlag{Name: "public-read", EnvVars: env("public-read"), Usage: "let requests without a token read every scope (writes still need one)"},
			&cli.StringSliceFlag{Name: "balancer-metrics", EnvVars: env("balancer-metrics"), Usage: "`URL` of a balancer's /metrics, for request rates (repeatable)"},
		},
		Action:      runAPI,
		Subcommands: []*cli.Command{apiTokenCommand()},
	}
}

func apiTokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "make an API token for a role and add its hash to a token file",
		Description: `Prints the token once; the file keeps only its SHA-256. The name is the actor of
the token's writes. Roles and scope patterns are those of 'hoist auth issue'
(docs/auth.md): admin, deployer --scopes, agent --node --scopes, balancer,
reader [--scopes].

Example:
   hoist api token --tokens tokens.toml --name ci-acme --role deployer --scopes 'acme.prod.*'
   hoist api token --tokens tokens.toml --name dash --role reader`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tokens", EnvVars: []string{"HOIST_API_TOKENS"}, Required: true, Usage: "token `FILE` to add to (made 0600 if missing)"},
			&cli.StringFlag{Name: "name", Required: true, Usage: "token `NAME`: a-z, 0-9, inner '-' or '_'"},
			&cli.StringFlag{Name: "role", Required: true, Usage: "`ROLE`: admin, deployer, agent, balancer or reader"},
			&cli.StringSliceFlag{Name: "scopes", Usage: "scope `PATTERNS` (client.env.solution, '*' for any token)"},
			&cli.StringFlag{Name: "node", Usage: "the agent's `NODE`"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, ""); err != nil {
				return err
			}
			kind, err := auth.ParseKind(c.String("role"))
			if err != nil {
				return usagef("--role: %v", err)
			}
			token, entry, err := api.NewToken(auth.Role{Kind: kind, Name: c.String("name"), Scopes: c.StringSlice("scopes"), Node: c.String("node")})
			if err != nil {
				return usagef("%v", err)
			}
			if err := api.AddToken(c.String("tokens"), entry); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "added %s %s to %s; the token (shown once):\n", entry.Role, entry.Name, c.String("tokens"))
			fmt.Fprintln(c.App.Writer, token)
			return nil
		},
	}
}

func runAPI(c *cli.Context) error {
	if _, err := args(c, 0, 0, ""); err != nil {
		return err
	}
	if err := checkListen("--listen", c.String("listen")); err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	opts := api.Options{Version: versionString(), Logger: log.With("part", "api")}
	if path := c.String("tokens"); path != "" {
		if opts.Tokens, err = api.OpenTokens(path); err != nil {
			return usagef("--tokens: %v", err)
		}
	}
	if c.Bool("public-read") {
		opts.Anonymous = &auth.Role{Kind: auth.KindReader, Name: "anonymous"}
	}
	if opts.Tokens == nil && opts.Anonymous == nil {
		return usagef("hoist api answers no one without --tokens FILE (make one with 'hoist api token') or --public-read")
	}
	if urls := c.StringSlice("balancer-metrics"); len(urls) > 0 {
		opts.Traffic = api.MetricsTraffic(urls)
	}
	nc, err := store.Connect(connectOptions(c, "hoist api", true, log))
	if err != nil {
		return err
	}
	defer nc.Close()
	opts.Store, err = openStoreWaiting(c.Context, nc, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("%w\n  Pick another address with --listen", err)
	}
	srv, err := api.Open(opts)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	log.Info("api listening", "url", "http://"+ln.Addr().String(), "tokens", c.String("tokens"), "public_read", c.Bool("public-read"))
	return serveAPI(c.Context, srv, ln)
}

// serveAPI serves until ctx ends; a clean shutdown is no error.
func serveAPI(ctx context.Context, srv *api.Server, ln net.Listener) error {
	err := srv.Serve(ctx, ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// metricsWriters lists WriteMetrics methods for api.Options.ExtraMetrics.
func metricsWriters(ws ...func(io.Writer) error) []func(io.Writer) error { return ws }
