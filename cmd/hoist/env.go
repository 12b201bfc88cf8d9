package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// bindEnvVars gives every flag without one an environment variable,
// HOIST_<NAME>: "--expect-revision" reads HOIST_EXPECT_REVISION. The
// contract promises that every flag can be set from the environment.
func bindEnvVars(flags []cli.Flag) {
	for _, f := range flags {
		name := "HOIST_" + strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_"))
		switch f := f.(type) {
		case *cli.StringFlag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.StringSliceFlag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.IntFlag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.Int64Flag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.Uint64Flag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.Float64Flag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.BoolFlag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.DurationFlag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		case *cli.PathFlag:
			if len(f.EnvVars) == 0 {
				f.EnvVars = []string{name}
			}
		}
	}
}
