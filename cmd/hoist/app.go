package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes are part of hoist's contract: scripts rely on them.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2 // usage or invalid input; nothing was published
	exitConflict = 3 // revision conflict; nothing was published
	exitWait     = 4 // wait timed out or the rollout failed
)

// run builds the app, runs it and maps its error to an exit code. Tests
// call it directly.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, os.Stdin, stdout, stderr)
}

// runWith is run with stdin as the standard input ('hoist secret set'
// reads values from it).
func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(stdout, stderr)
	app.Reader = stdin
	args, err := helpArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, reorderArgs(app, args))
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintln(stderr, "hoist: "+errorMessage(err))
	return code
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "hoist",
		Usage:                "event-sourced deployments on NATS JetStream",
		Description:          "Every change to what should run is an event on a scope (client.environment.solution).\nNode agents fold the events into desired state and reconcile containers; the balancer\nweights traffic by backend scores. Start with: hoist dev",
		Version:              versionString(),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Flags:                globalFlags(),
		OnUsageError:         onUsageError,
		ExitErrHandler:       func(*cli.Context, error) {}, // run maps errors to exit codes
		Commands:             commands(),
	}
	bindEnvVars(app.Flags)
	for _, c := range app.Commands {
		prepareCommand(c)
	}
	return app
}

// commands lists every command group. Each lives in its own file.
func commands() []*cli.Command {
	cmds := []*cli.Command{}
	cmds = append(cmds, publishCommands()...)
	cmds = append(cmds, readCommands()...)
	cmds = append(cmds, daemonCommands()...)
	cmds = append(cmds, authCommand())
	cmds = append(cmds, versionCommand())
	cmds = append(cmds, completionCommand())
	return cmds
}

func prepareCommand(c *cli.Command) {
	bindEnvVars(c.Flags)
	if c.OnUsageError == nil {
		c.OnUsageError = onUsageError
	}
	for _, sub := range c.Subcommands {
		prepareCommand(sub)
	}
}

// usageError is bad input on the command line: exit 2, nothing published.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitErr carries an explicit exit code and message (e.g. from wait).
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }
