package main

import "github.com/urfave/cli/v2"

// daemonCommands run hoist's long-lived parts: server, dev, agent, balancer.
func daemonCommands() []*cli.Command { return nil }
