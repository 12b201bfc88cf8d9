package main

// What urfave/cli v2 does not do the way hoist's contract needs, and how
// hoist makes up for it, all here so the next urfave/cli upgrade has one
// file to check (urfave_test.go pins each behaviour):
//   - flags after positional arguments (reorderArgs), shell completion
//     included;
//   - "hoist help CMD" and unknown command names (helpArgs): with the help
//     command hidden, urfave/cli answers both with "No help topic for
//     'help'" and exit 1;
//   - a usage error at the top level names "hoist --help", not
//     "hoist hoist --help" (onUsageError);
//   - an environment variable for every flag (bindEnvVars).

import (
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

var negativeNumber = regexp.MustCompile(`^-[0-9]+$`)

// reorderArgs moves flags that follow positional arguments in front of them,
// so that "hoist scale acme.prod.web 2 --expect-revision 1" works: urfave/cli
// v2 stops parsing flags at the first positional argument. Anything after
// "--" is left alone, and a negative number is a positional argument (so
// "scale S -1" is reported as a bad replica count, not an unknown flag).
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Shell completion asks with a trailing --generate-bash-completion, and
	// urfave/cli looks for it only in the last place: keep it there. With a
	// "--" anywhere, urfave/cli would run the command instead of completing
	// it ("hoist remove S --<Tab>" would remove S), so each "--" becomes a
	// lone "-", a positional argument that means nothing to completion.
	if n := len(args); app.EnableBashCompletion && args[n-1] == "--generate-bash-completion" {
		rest := slices.Clone(args[:n-1])
		for i, a := range rest {
			if a == "--" {
				rest[i] = "-"
			}
		}
		return append(reorderArgs(app, rest), args[n-1])
	}
	out := []string{args[0]}
	rest := args[1:]
	flags, subs := app.Flags, app.Commands
	for {
		if len(subs) == 0 { // a leaf command: flags may come anywhere
			consumed, positional := splitFlags(flags, rest)
			out = append(out, consumed...)
			return append(out, positional...)
		}
		// A command with subcommands: take its leading flags, then descend
		// into the subcommand named next, if any.
		i := leadingFlags(flags, rest)
		out = append(out, rest[:i]...)
		rest = rest[i:]
		if len(rest) == 0 {
			return out
		}
		var next *cli.Command
		for _, c := range subs {
			if c.HasName(rest[0]) {
				next = c
				break
			}
		}
		if next == nil {
			return append(out, rest...)
		}
		out = append(out, rest[0])
		flags, subs, rest = next.Flags, next.Subcommands, rest[1:]
	}
}

// leadingFlags returns how many of args are flags (with their values)
// before the first positional argument.
func leadingFlags(flags []cli.Flag, args []string) int {
	values := valueFlags(flags)
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' || negativeNumber.MatchString(a) {
			return i
		}
		i++
		if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && values[name] && i < len(args) {
			i++
		}
	}
	return i
}

// valueFlags says, for each flag name, whether the flag takes a value.
func valueFlags(flags []cli.Flag) map[string]bool {
	values := map[string]bool{}
	for _, f := range flags {
		tv := false
		if df, ok := f.(cli.DocGenerationFlag); ok {
			tv = df.TakesValue()
		}
		for _, n := range f.Names() {
			values[n] = tv
		}
	}
	return values
}

// splitFlags separates the flags known in flags (with their values) from
// the positional arguments, keeping each group's order. The positionals
// come back with any "--" and what follows it.
func splitFlags(flags []cli.Flag, args []string) (flagArgs, positional []string) {
	takesValue := valueFlags(flags)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flagArgs, append(positional, args[i:]...)
		case len(a) > 1 && a[0] == '-' && !negativeNumber.MatchString(a):
			flagArgs = append(flagArgs, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if takesValue[name] && i+1 < len(args) {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	return flagArgs, positional
}

// helpArgs turns "hoist help CMD…" into "hoist CMD… --help" and refuses, as
// bad usage, a command name that no command has. It leaves alone the
// arguments of a command that takes them, and completion requests.
func helpArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args, nil
	}
	i := 1 + leadingFlags(app.Flags, args[1:])
	if i >= len(args) {
		return args, nil
	}
	rest := args[i:]
	help := rest[0] == "help" || rest[0] == "h"
	if help {
		rest = rest[1:]
	}
	var path []string
	cmds, takesArgs := app.Commands, false
	for _, name := range rest {
		if len(cmds) == 0 || strings.HasPrefix(name, "-") {
			break
		}
		i := slices.IndexFunc(cmds, func(c *cli.Command) bool { return c.HasName(name) })
		if i < 0 {
			if takesArgs && !help {
				break // a positional argument of that command
			}
			return nil, usagef("unknown command %q (see '%s --help')", strings.Join(append(path, name), " "), strings.Join(append([]string{app.Name}, path...), " "))
		}
		path = append(path, cmds[i].Name)
		cmds, takesArgs = cmds[i].Subcommands, cmds[i].Action != nil
	}
	if !help {
		return args, nil
	}
	return slices.Concat(args[:i], path, []string{"--help"}), nil
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	// Command.FullName names a subcommand without its parent, and the top
	// level as the app: build the path from the contexts instead.
	var path []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			path = append([]string{ctx.Command.Name}, path...)
		}
	}
	path = slices.Compact(path)
	return usagef("%v (see '%s --help')", err, strings.Join(append([]string{c.App.Name}, path...), " "))
}

// bindEnvVars gives every flag without one an environment variable,
// HOIST_<NAME>: "--expect-revision" reads HOIST_EXPECT_REVISION. The
// contract promises that every flag can be set from the environment.
// urfave/cli's flag types share no setter, but each has an EnvVars field.
func bindEnvVars(flags []cli.Flag) {
	for _, f := range flags {
		v := reflect.ValueOf(f)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		ev := v.Elem().FieldByName("EnvVars")
		if !ev.IsValid() || ev.Len() > 0 || ev.Type() != reflect.TypeFor[[]string]() {
			continue
		}
		name := "HOIST_" + strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_"))
		ev.Set(reflect.ValueOf([]string{name}))
	}
}
