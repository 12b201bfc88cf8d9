package main

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
)

// Input parsing for the publish commands. Everything here runs before
// hoist connects, so bad input never reaches the store.

// listValue collects a repeated flag without splitting its values on
// commas, as urfave's slice flags do: "--env LIST=a,b" is one variable.
type listValue struct{ items []string }

func (l *listValue) Set(s string) error { l.items = append(l.items, s); return nil }
func (l *listValue) String() string     { return strings.Join(l.items, " ") }

func listFlagValues(c *cli.Context, name string) []string {
	if l, ok := c.Generic(name).(*listValue); ok {
		return l.items
	}
	return nil
}

// parseEnvPairs parses K=V arguments and checks each variable.
func parseEnvPairs(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usagef("env %q: want KEY=VALUE", p)
		}
		if err := events.ValidateEnv(k, v); err != nil {
			return nil, err
		}
		env[k] = v
	}
	return env, nil
}

// parseInt parses a whole-number positional argument named field.
func parseInt(field, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, usagef("%s %q is not a whole number", field, s)
	}
	return n, nil
}

// args checks the number of positional arguments and returns them.
func args(c *cli.Context, min, max int, names string) ([]string, error) {
	n := c.NArg()
	if n >= min && (max < 0 || n <= max) {
		return c.Args().Slice(), nil
	}
	return nil, usagef("usage: hoist %s %s (got %d argument%s; see 'hoist %s --help')",
		c.Command.Name, names, n, plural(n), c.Command.Name)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// expectRevision reads --expect-revision: nil when it was not given.
func expectRevision(c *cli.Context) *uint64 {
	if !c.IsSet("expect-revision") {
		return nil
	}
	v := c.Uint64("expect-revision")
	return &v
}

func expectRevisionFlag() cli.Flag {
	return &cli.Uint64Flag{Name: "expect-revision", DefaultText: "any", Usage: "publish only if the scope's head is revision `N` (else exit 3); 0 means the scope must be empty"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON"}
}

// parsePositiveRevision checks a revision given by the user.
func parsePositiveRevision(flag string, rev uint64) error {
	if rev == 0 {
		return usagef("%s 0: revisions start at 1", flag)
	}
	return nil
}
