//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process this program started. It is stopped by its own
// PID, never by name.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs bin with args, its output going to a log file in dir.
// ready, if set, is called with each stdout line until it returns true.
func start(dir, name, bin string, args []string, env []string, ready func(line string) bool, timeout time.Duration) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(logf, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if ready == nil {
		return p, nil
	}
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-p.done
				return nil, fmt.Errorf("%s exited before it was ready (%v); see %s", name, p.err, logPath)
			}
			if ready(line) {
				return p, nil
			}
		case <-deadline:
			p.stop()
			return nil, fmt.Errorf("%s not ready within %s; see %s", name, timeout, logPath)
		}
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the process and, after 10 s, SIGKILL; it waits for
// it to exit. Safe to call twice.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// server is a `hoist server` child process.
type server struct {
	*proc
	url  string
	data string
	pidv int
}

// pid is the server's process: the child's, or this one's when embedded.
func (s *server) pid() int { return s.pidv }

func startServer(bin, dir, name string) (*server, error) {
	data := filepath.Join(dir, name+"-data")
	var url string
	p, err := start(dir, name, bin, []string{"--log-level", "warn", "server", "--listen", "127.0.0.1:" + strconv.Itoa(freePort()), "--data", data, "--name", name},
		nil, func(line string) bool {
			if u, ok := strings.CutPrefix(line, "ready: "); ok {
				url = strings.TrimSpace(u)
				return true
			}
			return false
		}, 60*time.Second)
	if err != nil {
		return nil, err
	}
	return &server{proc: p, url: url, data: data, pidv: p.pid()}, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// rssKB is a process's resident set (VmRSS) in KiB.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 100

// cpuTime is the user+system CPU a process has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick
}

// rssSampler records a process's peak RSS until stopped.
type rssSampler struct {
	peak   int64
	cancel context.CancelFunc
	done   chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rssSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.peak = max(s.peak, rssKB(pid))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak RSS in KiB.
func (s *rssSampler) stop() int64 {
	s.cancel()
	<-s.done
	return s.peak
}

// settledRSS samples a process's RSS for d and returns the median, which
// ignores a passing GC spike.
func settledRSS(pid int, d time.Duration) int64 {
	var v []int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		v = append(v, rssKB(pid))
	}
	if len(v) == 0 {
		return rssKB(pid)
	}
	for i := 1; i < len(v); i++ { // insertion sort: a few dozen values
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[len(v)/2]
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// goBuild builds pkg into out with extra flags, returning its size.
func goBuild(root, out, pkg string, env []string, flags ...string) (int64, error) {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
