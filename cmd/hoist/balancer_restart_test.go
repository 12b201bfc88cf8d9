//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// The tests here run 'hoist balancer' as real processes, so that SIGTERM,
// SO_REUSEPORT and the kernel's accept queues are the real ones. The
// process is this test binary re-run as hoist (TestHoistHelperProcess):
// the same code as the built command, without a go build.

const helperEnv = "HOIST_TEST_HELPER_PROCESS"

// TestHoistHelperProcess is not a test: it is hoist, run by startHoistProc.
func TestHoistHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only as a subprocess of the balancer process tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(append([]string{"hoist"}, args...), os.Stdout, os.Stderr))
}

// hoistProc is a hoist process the test started and owns by its PID.
type hoistProc struct {
	name string
	cmd  *exec.Cmd
	log  *natstest.SyncBuffer // stderr: the JSON log
	done chan struct{}
	err  error // the exit, once done is closed
}

// startHoistProc runs hoist args... as a subprocess. It is killed when the
// test ends, and its log is printed if the test failed.
func startHoistProc(t *testing.T, name string, args ...string) *hoistProc {
	t.Helper()
	p := &hoistProc{name: name, log: &natstest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestHoistHelperProcess$", "--"}, args...)...)
	p.cmd.Env = append(os.Environ(), helperEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s (pid %d) log:\n%s", p.name, p.cmd.Process.Pid, p.log.String())
		}
	})
	return p
}

// logged returns the first log record whose msg is msg.
func (p *hoistProc) logged(msg string) (map[string]any, bool) {
	for line := range strings.Lines(p.log.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// waitLog polls the log until it has msg, failing if the process exits
// first.
func (p *hoistProc) waitLog(t *testing.T, timeout time.Duration, msg string) map[string]any {
	t.Helper()
	var rec map[string]any
	natstest.Eventually(t, timeout, func() error {
		var ok bool
		if rec, ok = p.logged(msg); ok {
			return nil
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, p.err, msg, p.log.String())
		default:
		}
		return fmt.Errorf("%s has not logged %q", p.name, msg)
	})
	return rec
}

// terminate sends SIGTERM and waits for the exit, which must be 0.
func (p *hoistProc) terminate(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running %s after SIGTERM", p.name, timeout)
	}
	if p.err != nil {
		t.Fatalf("%s exited with %v after SIGTERM", p.name, p.err)
	}
}

// balancerFixture is a NATS server, a backend and the events that route
// web.localhost to it.
type balancerFixture struct {
	natsURL        string
	listen, metric string
}

func newBalancerFixture(t *testing.T, backend http.Handler) balancerFixture {
	t.Helper()
	srv := natstest.Start(t)
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	for _, args := range [][]string{
		{"deploy", "acme.prod.web", "--image", "demo:1", "--host", "web.localhost"},
		{"announce", "acme.prod.web", strings.TrimPrefix(be.URL, "http://"), "--host", "web.localhost"},
	} {
		if code, _, stderr := balancerTestRun(srv.URL(), args...); code != 0 {
			t.Fatalf("hoist %v: %d %s", args, code, stderr)
		}
	}
	ports := natstest.FreePorts(t, 2)
	return balancerFixture{
		natsURL: srv.URL(),
		listen:  "127.0.0.1:" + strconv.Itoa(ports[0]),
		metric:  "127.0.0.1:" + strconv.Itoa(ports[1]),
	}
}

func (f balancerFixture) start(t *testing.T, name string, extra ...string) *hoistProc {
	t.Helper()
	args := append([]string{"--nats-url", f.natsURL, "--log-format", "json", "balancer",
		"--listen", f.listen, "--metrics", f.metric}, extra...)
	return startHoistProc(t, name, args...)
}

// get asks the balancer for web.localhost once, on a fresh connection.
func (f balancerFixture) get(path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.listen+path, nil)
	req.Host = "web.localhost"
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// waitServes polls until the balancer routes web.localhost to the backend.
func (f balancerFixture) waitServes(t *testing.T) {
	t.Helper()
	natstest.Eventually(t, 15*time.Second, func() error {
		if code, body, err := f.get("/"); err != nil || code != 200 || body != "ok" {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
}

// load sends requests to the balancer from keep-alive clients and from
// clients that dial for every request, GETs and POSTs (which no client
// replays on a closed connection), until stop. Every answer but a 200
// with the backend's body is a failure.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

func startLoad(target string, keepAlive, fresh int) *load {
	l := &load{stop: make(chan struct{})}
	worker := func(tr *http.Transport) {
		defer l.wg.Done()
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			var req *http.Request
			if i%2 == 0 {
				req, _ = http.NewRequest(http.MethodGet, target, nil)
			} else {
				req, _ = http.NewRequest(http.MethodPost, target, strings.NewReader("x"))
			}
			req.Host = "web.localhost"
			l.record(c.Do(req))
		}
	}
	for range keepAlive {
		l.wg.Add(1)
		go worker(&http.Transport{MaxIdleConnsPerHost: 1})
	}
	for range fresh {
		l.wg.Add(1)
		go worker(&http.Transport{DisableKeepAlives: true})
	}
	return l
}

func (l *load) record(res *http.Response, err error) {
	if err == nil {
		body, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		switch {
		case rerr != nil:
			err = rerr
		case res.StatusCode != http.StatusOK || string(body) != "ok":
			err = fmt.Errorf("%d %q", res.StatusCode, body)
		}
	}
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, err.Error())
	}
	l.mu.Unlock()
}

func (l *load) total() int64 { return l.ok.Load() + l.failed.Load() }

// waitFor polls until n more requests were answered than at the call.
func (l *load) waitFor(t *testing.T, n int64) {
	t.Helper()
	until := l.total() + n
	natstest.Eventually(t, 20*time.Second, func() error {
		if got := l.total(); got < until {
			return fmt.Errorf("%d of %d requests", got, until)
		}
		return nil
	})
}

// end stops the load and waits for it. Safe to call twice.
func (l *load) end() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func okBackend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
}

// balancerRestarts is how many handovers TestBalancerRestartUnderLoad does;
// HOIST_BALANCER_RESTARTS raises it to measure (docs/balancer.md).
func balancerRestarts(t *testing.T) int {
	if s := os.Getenv("HOIST_BALANCER_RESTARTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("HOIST_BALANCER_RESTARTS=%q: want a positive count", s)
		}
		return n
	}
	return 2
}

// TestBalancerRestartUnderLoad replaces a running balancer with a new one
// on the same port, under load, as docs/balancer.md says to: start the new
// one, wait for it to listen, SIGTERM the old one. With --handoff-socket
// not a request may fail, and each old balancer must exit 0 after
// draining. With --reuse-port the same holds only when the kernel
// migrates a closing socket's queue (net.ipv4.tcp_migrate_req=1); without
// it the failures are counted, not asserted. HOIST_BALANCER_RESTARTS=N
// measures N restarts per mode, and adds the plain stop-then-start.
func TestBalancerRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts balancer processes")
	}
	modes := []string{"handoff", "reuse-port"}
	if os.Getenv("HOIST_BALANCER_RESTARTS") != "" {
		modes = append(modes, "stop-start")
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			failed, total := restartUnderLoad(t, mode, balancerRestarts(t))
			if total < 2500 {
				t.Errorf("only %d requests", total)
			}
			migrates := false
			if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err == nil {
				migrates = strings.TrimSpace(string(b)) == "1"
			}
			switch {
			case failed == 0:
			case mode == "handoff" || (mode == "reuse-port" && migrates):
				t.Errorf("%d of %d requests failed", failed, total)
			default:
				t.Logf("%s: %d of %d requests failed (not asserted: tcp_migrate_req=%v)", mode, failed, total, migrates)
			}
		})
	}
}

// restartUnderLoad restarts the balancer restarts times under load, the
// way mode says, and returns the failed and total requests.
func restartUnderLoad(t *testing.T, mode string, restarts int) (failed, total int64) {
	f := newBalancerFixture(t, okBackend())
	var args []string
	switch mode {
	case "handoff":
		args = []string{"--handoff-socket", t.TempDir() + "/balancer.sock"}
	case "reuse-port":
		args = []string{"--reuse-port"}
	}
	old := f.start(t, "balancer 0", args...)
	old.waitLog(t, 15*time.Second, "balancer listening")
	f.waitServes(t) // the first one binds before it has a table

	l := startLoad("http://"+f.listen+"/", 4, 2)
	defer l.end()
	l.waitFor(t, 1000)
	for i := 1; i <= restarts; i++ {
		name := "balancer " + strconv.Itoa(i)
		var next *hoistProc
		if mode == "stop-start" {
			old.terminate(t, 15*time.Second)
			next = f.start(t, name, args...)
			next.waitLog(t, 15*time.Second, "balancer listening")
		} else {
			next = f.start(t, name, args...)
			next.waitLog(t, 15*time.Second, "balancer listening")
			if _, took := next.logged("balancer uses a passed socket"); mode == "handoff" && !took {
				t.Fatalf("%s bound its own sockets instead of taking them over", name)
			}
			l.waitFor(t, 200) // both serve now
			old.terminate(t, 15*time.Second)
		}
		drained := old.waitLog(t, time.Second, "balancer drained")
		if drained["cut"] != 0.0 {
			t.Errorf("%s cut requests: %v", old.name, drained)
		}
		l.waitFor(t, 1000)
		old = next
	}
	l.end()
	t.Logf("%s, %d restarts: %d requests, %d failed %q", mode, restarts, l.total(), l.failed.Load(), l.errs)
	return l.failed.Load(), l.total()
}

// TestBalancerSIGTERMFinishesInFlightRequest: a request in flight when
// SIGTERM comes gets its whole answer, while new connections are refused,
// and the balancer then exits 0.
func TestBalancerSIGTERMFinishesInFlightRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a balancer process")
	}
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	f := newBalancerFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	p := f.start(t, "balancer")
	f.waitServes(t)

	type answer struct {
		code int
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		code, body, err := f.get("/slow")
		slow <- answer{code, body, err}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the backend")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	draining := p.waitLog(t, 10*time.Second, "balancer draining")
	if draining["in_flight"] != 1.0 {
		t.Errorf("draining with %v in flight, want 1", draining["in_flight"])
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", f.listen, time.Second)
		if err == nil {
			c.Close()
			return errors.New("the draining balancer still accepts connections")
		}
		return nil
	})
	close(release)
	a := <-slow
	if a.err != nil || a.code != 200 || a.body != "ok" {
		t.Fatalf("in-flight request: %d %q %v", a.code, a.body, a.err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("balancer still running after its last request")
	}
	if p.err != nil {
		t.Fatalf("balancer exited with %v", p.err)
	}
	drained, _ := p.logged("balancer drained")
	if drained["in_flight_at_start"] != 1.0 || drained["cut"] != 0.0 {
		t.Fatalf("drained: %v", drained)
	}
}

// TestBalancerSocketActivation passes the listening socket as systemd
// does (LISTEN_FDS, fd 3). The socket outlives each balancer, so a
// connection made while none runs waits in its queue for the next one
// instead of being refused: what `systemctl restart` with
// hoist-balancer.socket relies on.
func TestBalancerSocketActivation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts balancer processes")
	}
	f := newBalancerFixture(t, okBackend())
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	activated := func(name string) *hoistProc {
		t.Helper()
		// sh sets LISTEN_PID to its own PID, which exec keeps: only the
		// balancer, not a process it starts, takes the socket.
		p := &hoistProc{name: name, log: &natstest.SyncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$0" "$@"`,
			os.Args[0], "-test.run=^TestHoistHelperProcess$", "--",
			"--nats-url", f.natsURL, "--log-format", "json", "balancer", "--listen", f.listen)
		p.cmd.Env = append(os.Environ(), helperEnv+"=1")
		p.cmd.ExtraFiles = []*os.File{sock}
		p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.log
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("--- %s log:\n%s", name, p.log.String())
			}
		})
		return p
	}
	a := activated("balancer a")
	a.waitLog(t, 15*time.Second, "balancer listening")
	if code, body, err := f.get("/"); err != nil || code != 200 || body != "ok" {
		t.Fatalf("through a: %d %q %v", code, body, err)
	}
	if _, ok := a.logged("balancer uses a passed socket"); !ok {
		t.Fatal("a did not use the passed socket")
	}
	a.terminate(t, 15*time.Second)

	// No balancer runs: the connection and its request wait in the
	// socket's queue.
	c, err := net.DialTimeout("tcp", f.listen, 5*time.Second)
	if err != nil {
		t.Fatalf("connect between two balancers: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b := activated("balancer b")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request made between two balancers: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("request made between two balancers: %d %q", res.StatusCode, body)
	}
	b.terminate(t, 15*time.Second)
}
