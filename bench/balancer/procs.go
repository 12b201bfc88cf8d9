//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started and must stop: each runs in
// its own process group (nginx forks workers), so stopping signals the
// group we created, by its id.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set when done is closed
}

// procs owns every child; stopAll stops them in reverse order.
type procs struct {
	mu   sync.Mutex
	list []*proc
	logs string // directory for each child's stdout/stderr
}

// start runs argv with env added to ours. Its output goes to logs/name.log;
// when firstLine is not nil, the first stdout line is sent to it instead.
func (ps *procs) start(name string, argv []string, env []string, firstLine chan<- string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(ps.logs, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("log for %s: %w", name, err)
	}
	cmd.Stderr = logf
	var stdout io.ReadCloser
	if firstLine != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("pipe for %s: %w", name, err)
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	var copied sync.WaitGroup
	if stdout != nil {
		copied.Go(func() {
			br := bufio.NewReader(stdout)
			line, _ := br.ReadString('\n')
			firstLine <- strings.TrimSpace(line)
			_, _ = io.Copy(logf, br)
		})
	}
	go func() {
		copied.Wait()
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the child's group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// exited reports the child's exit error when it has exited.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(5 * time.Second)
	}
}

// logTail returns the end of a child's log, for error messages.
func (ps *procs) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(ps.logs, name+".log"))
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return strings.TrimSpace(string(b))
}

// freePort asks the kernel for a free port. Another program could take it
// before the child binds it; waitHTTP then fails on the body check.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url (with Host host) until it answers 200 with a body
// containing want, the child exits, or the deadline passes.
func waitHTTP(ctx context.Context, p *proc, url, host, want string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		if ok, err := p.exited(); ok {
			return fmt.Errorf("%s exited before serving: %v", p.name, err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = host
		res, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && strings.Contains(string(b), want) {
				return nil
			}
			err = fmt.Errorf("status %d, body %.80q", res.StatusCode, b)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving %s: %w", p.name, url, errors.Join(ctx.Err(), last))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// usage is the CPU time and peak memory of a process tree.
type usage struct {
	cpu time.Duration
	rss int64 // sum of VmHWM of the tree, bytes
}

// treeUsage sums utime+stime (and VmHWM) over pid and its descendants.
func treeUsage(pid int, tick time.Duration) usage {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(n); len(f) > 1 {
			pp, _ := strconv.Atoi(f[1]) // ppid is field 4, the 2nd after "(comm)"
			parent[n] = pp
		}
	}
	in := func(n int) bool {
		for i := 0; n > 1 && i < 64; i++ {
			if n == pid {
				return true
			}
			n = parent[n]
		}
		return false
	}
	var u usage
	for n := range parent {
		if !in(n) {
			continue
		}
		f := statFields(n)
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
			st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
			u.cpu += time.Duration(ut+st) * tick
		}
		u.rss += vmHWM(n)
	}
	return u
}

// statFields returns /proc/N/stat after the "(comm)" field: state first.
func statFields(n int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(n) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func vmHWM(n int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(n) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// clockTick is the length of one /proc CPU tick (USER_HZ).
func clockTick() time.Duration {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if hz, err2 := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && err2 == nil && hz > 0 {
		return time.Second / time.Duration(hz)
	}
	return 10 * time.Millisecond
}
