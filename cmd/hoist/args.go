package main

import (
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
