package chaos

import (
	"bytes"
	"context"
	"encoding/json"
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

// proc is a hoist daemon the test started; it is stopped by its PID only.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out, log *natstest.SyncBuffer
	done     chan struct{} // closed once reaped
	stopOnce sync.Once
}

// startProc runs hoistBin args... with env added to a HOIST_-free
// environment. It is stopped (SIGTERM, then SIGKILL) when the test ends,
// and Pdeathsig kills it should the test binary die first.
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
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(20 * time.Second)
		if t.Failed() {
			t.Logf("--- %s (pid %d) stderr (tail):\n%s", name, p.cmd.Process.Pid, tail(p.log.String(), 60))
		}
	})
	return p
}

// cleanEnv is the test's environment without HOIST_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOIST_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// stop sends SIGTERM and, after grace, SIGKILL. Safe to call twice.
func (p *proc) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// waitJSONLog waits for a JSON log line whose msg is msg and returns its
// fields.
func (p *proc) waitJSONLog(t *testing.T, timeout time.Duration, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	natstest.Eventually(t, timeout, func() error {
		for line := range strings.Lines(p.log.String()) {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == msg && (match == nil || match(l)) {
				found = l
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before logging %q: %s", p.name, msg, tail(p.log.String(), 20))
		default:
		}
		return fmt.Errorf("%s has not logged %q", p.name, msg)
	})
	return found
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s, stdout %q, stderr %q", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runHoist runs the CLI with env, bounded by a minute.
func runHoist(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hoistBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if err != nil {
		r.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
	}
	return r
}

// mustHoist is runHoist wanting exit code want.
func mustHoist(t *testing.T, env []string, want int, args ...string) result {
	t.Helper()
	r := runHoist(t, env, args...)
	if r.code != want {
		t.Fatalf("hoist %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
