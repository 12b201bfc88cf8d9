package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats-url", Value: store.DefaultURL, Usage: "NATS server URL(s), comma-separated", EnvVars: []string{"HOIST_NATS_URL"}},
		&cli.StringFlag{Name: "nats-user", Usage: "NATS user name", EnvVars: []string{"HOIST_NATS_USER"}},
		&cli.StringFlag{Name: "nats-password", Usage: "NATS password; on the command line it shows in ps, so prefer --nats-password-file or $HOIST_NATS_PASSWORD", EnvVars: []string{"HOIST_NATS_PASSWORD"}},
		&cli.StringFlag{Name: "nats-password-file", Usage: "read the NATS password from a file", EnvVars: []string{"HOIST_NATS_PASSWORD_FILE"},
			Action: readSecretInto("nats-password")},
		&cli.StringFlag{Name: "nats-token", Usage: "NATS auth token; on the command line it shows in ps, so prefer --nats-token-file or $HOIST_NATS_TOKEN", EnvVars: []string{"HOIST_NATS_TOKEN"}},
		&cli.StringFlag{Name: "nats-token-file", Usage: "read the NATS auth token from a file", EnvVars: []string{"HOIST_NATS_TOKEN_FILE"},
			Action: readSecretInto("nats-token")},
		&cli.StringFlag{Name: "nats-creds", Usage: "NATS credentials file", EnvVars: []string{"HOIST_NATS_CREDS"}},
		&cli.StringFlag{Name: "nats-nkey", Usage: "NATS nkey seed file", EnvVars: []string{"HOIST_NATS_NKEY"}},
		&cli.StringFlag{Name: "nats-ca", Usage: "CA file to verify the NATS server's TLS certificate", EnvVars: []string{"HOIST_NATS_CA"}},
		&cli.StringFlag{Name: "nats-cert", Usage: "client TLS certificate file", EnvVars: []string{"HOIST_NATS_CERT"}},
		&cli.StringFlag{Name: "nats-key", Usage: "client TLS key file", EnvVars: []string{"HOIST_NATS_KEY"}},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"HOIST_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text (for people) or json (for machines)", EnvVars: []string{"HOIST_LOG_FORMAT"}},
	}
}

// readSecretInto is the action of a global NAME-file flag: it reads the
// file into NAME, so every command that connects finds the secret there.
func readSecretInto(name string) func(*cli.Context, string) error {
	return func(c *cli.Context, _ string) error {
		v, err := secretFlag(c, name)
		if err != nil {
			return err
		}
		return c.Set(name, v)
	}
}

// secretFlag is the password or token of flag NAME, or the content of
// the file that NAME-file names. A secret on the command line shows in ps
// to every user of the host; a file or an environment variable does not.
func secretFlag(c *cli.Context, name string) (string, error) {
	fileFlag := name + "-file"
	path := c.String(fileFlag)
	switch {
	case c.IsSet(fileFlag) && path == "":
		return "", usagef("--%s is empty: give the file that holds the secret", fileFlag)
	case path == "":
		return c.String(name), nil
	case c.String(name) != "":
		return "", usagef("--%s and --%s exclude each other: give the secret one way", name, fileFlag)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("--%s: %v", fileFlag, err)
	}
	// An editor or echo leaves a newline that is not part of the secret.
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		return "", usagef("--%s %s is empty", fileFlag, path)
	}
	return secret, nil
}

// newLogger builds the logger from the global flags: tint for people,
// JSON for machines, always on stderr.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	w := c.App.ErrWriter
	switch c.String("log-format") {
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
	case "text", "":
		noColor := true
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				noColor = os.Getenv("NO_COLOR") != ""
			}
		}
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: noColor})), nil
	}
	return nil, usagef("--log-format %q: want text or json", c.String("log-format"))
}

// connectOptions reads the connection flags.
func connectOptions(c *cli.Context, name string, daemon bool, log *slog.Logger) store.ConnectOptions {
	return store.ConnectOptions{
		URL:       c.String("nats-url"),
		Name:      name,
		User:      c.String("nats-user"),
		Password:  c.String("nats-password"),
		Token:     c.String("nats-token"),
		CredsFile: c.String("nats-creds"),
		NKeyFile:  c.String("nats-nkey"),
		TLSCA:     c.String("nats-ca"),
		TLSCert:   c.String("nats-cert"),
		TLSKey:    c.String("nats-key"),
		Daemon:    daemon,
		Logger:    log,
	}
}

// openStore connects for a one-shot command and opens the store. The
// returned close func drains the connection.
func openStore(c *cli.Context) (*store.Store, func(), error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, nil, err
	}
	nc, err := store.Connect(connectOptions(c, "hoist "+c.Command.Name, false, log))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
	defer cancel()
	st, err := store.Open(ctx, nc, store.Options{Logger: log})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return st, func() { closeConn(nc) }, nil
}

func closeConn(nc *nats.Conn) {
	if err := nc.Drain(); err != nil {
		nc.Close()
	}
}

// actorOf names who publishes an event: the credential's name when there
// is one (with auth on, the server accepts no other on the subject), else
// $HOIST_ACTOR, else user@host; with what an actor may not hold turned
// into '-'.
func actorOf(c *cli.Context) string {
	if creds := c.String("nats-creds"); creds != "" {
		if name, err := store.CredsName(creds); err == nil && name != "" {
			return name
		}
	}
	return events.ActorName(defaultActor())
}

func defaultActor() string {
	if a := os.Getenv("HOIST_ACTOR"); a != "" {
		return a
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return fmt.Sprintf("%s@%s", name, host)
}

// parseScope validates a SCOPE argument as input (exit 2 on error).
func parseScope(s string) (events.Scope, error) {
	sc, err := events.ParseScope(s)
	if err != nil {
		return events.Scope{}, &usageError{msg: err.Error()}
	}
	return sc, nil
}
