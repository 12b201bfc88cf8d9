package main

import "github.com/urfave/cli/v2"

// daemonCommands run hoist's long-lived parts: server, dev, agent, balancer.
// Each lives in its own file.
func daemonCommands() []*cli.Command {
	return []*cli.Command{
		devCommand(),
		apiCommand(),
		serverCommand(),
		balancerCommand(),
		announceCommand(),
		agentCommand(),
		demoBackendCommand(),
	}
}
