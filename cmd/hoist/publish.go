package main

import "github.com/urfave/cli/v2"

// publishCommands append one event each: deploy, scale, env, rollback,
// remove, score, drain, undrain.
func publishCommands() []*cli.Command { return nil }
