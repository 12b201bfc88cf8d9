// Command hoist is the CLI, the agent, the balancer and the server of hoist,
// an event-sourced deployment system on NATS JetStream.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}
