package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// proc is a hoist daemon the test started and owns by its PID.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out, log *natstest.SyncBuffer
	done     chan struct{} // closed once the process was reaped
	err      error         // its exit, valid after done
	stopOnce sync.Once
}

// startProc runs hoist args... with extra environment. It is stopped
// (SIGTERM, then SIGKILL) when the test ends, and its log is printed if the
// test failed. Pdeathsig kills it should the test binary die first.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &natstest.SyncBuffer{}, log: &natstest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(hoistBin, args...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(20 * time.Second)
		if t.Failed() {
			t.Logf("--- %s (pid %d) stdout:\n%s--- %s stderr (tail):\n%s", name, p.cmd.Process.Pid, tail(p.out.String(), 30), name, tail(p.log.String(), 80))
		}
	})
	return p
}

// cleanEnv is the test's environment without HOIST_* variables, so a
// developer's settings do not leak into the daemons.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOIST_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process is gone (and reaped).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process unless it already exited.
func (p *proc) signal(sig os.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// waitExit waits up to timeout for the process to exit.
func (p *proc) waitExit(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %s", p.name, p.pid(), timeout)
	}
}

// stop sends SIGTERM and, after grace, SIGKILL. Safe to call twice.
func (p *proc) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		_ = p.signal(syscall.SIGTERM)
		if p.waitExit(grace) != nil && !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// waitLine polls the process's stdout and stderr until find returns ok,
// failing when the process exits first or timeout passes.
func (p *proc) waitLine(t *testing.T, timeout time.Duration, what string, find func(stdout, stderr string) (string, bool)) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v, ok := find(p.out.String(), p.log.String()); ok {
			return v
		}
		if p.exited() {
			t.Fatalf("%s exited (%v) before %s:\n%s", p.name, p.err, what, tail(p.log.String(), 60))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within %s:\n%s", p.name, what, timeout, tail(p.log.String(), 60))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls check every 100ms (most checks run a hoist command)
// and names what it waits for when it fails.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := natstest.PollEvery(timeout, 100*time.Millisecond, check); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
