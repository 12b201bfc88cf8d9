package main

import "github.com/urfave/cli/v2"

// readCommands show what the store holds: scopes, log, state.
func readCommands() []*cli.Command { return nil }
