//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package process

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// processSupported refuses the process runtime here: it relies on process
// groups and on telling a reused pid apart, which this system does not
// offer the way the runtime needs. The Docker runtime works everywhere.
func processSupported() error {
	return fmt.Errorf("%w: the process runtime does not run on %s; use the docker runtime", errors.ErrUnsupported, runtime.GOOS)
}

func ownProcessGroup() *syscall.SysProcAttr { return nil }

// signalGroup kills pid: there are no process groups or SIGTERM to send.
// Unreachable in practice, since New refuses to run here.
func signalGroup(pid int, _ bool) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil // gone already
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func procStartTicks(int) (uint64, bool) { return 0, false }
