package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/internal/demoapp"
)

// demoBackendCommand lets hoist itself serve as the demo workload, so the
// demo needs no registry: `hoist dev` runs it as a process or copies the
// binary into a FROM scratch image.
func demoBackendCommand() *cli.Command {
	return &cli.Command{
		Name:   "demo-backend",
		Usage:  "serve the demo HTTP backend on $PORT (used by hoist dev)",
		Hidden: true,
		Description: "Answers GET / with its replica identity (HOIST_NODE, HOIST_REPLICA, HOIST_SCOPE, HOIST_REVISION),\n" +
			"GET /up with 200 (or 503 when DEMO_FAIL_HEALTH=1), and GET /slow?ms=N after N ms.",
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			cfg := demoapp.ConfigFromEnv()
			cfg.Logger = log
			return demoapp.Run(c.Context, cfg)
		},
	}
}
