package main

import (
	"os"
	"syscall"
)

// Windows delivers none of the agent's control signals: use 'hoist drain',
// 'hoist undrain' and a restart instead. The values only keep the switch in
// handleAgentSignal compiling; they are never received.
const (
	sigDrain   = syscall.Signal(0x1f)
	sigUndrain = syscall.Signal(0x1e)
	sigReload  = syscall.SIGHUP
)

// agentSignals is not empty: signal.Notify with no signals would relay all.
func agentSignals() []os.Signal { return []os.Signal{sigReload} }
