//go:build !windows

package main

import (
	"os"
	"syscall"
)

// The agent's control signals (see 'hoist agent --help').
const (
	sigDrain   = syscall.SIGUSR2
	sigUndrain = syscall.SIGUSR1
	sigReload  = syscall.SIGHUP
)

func agentSignals() []os.Signal { return []os.Signal{sigReload, sigUndrain, sigDrain} }
