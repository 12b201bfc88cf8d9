package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// result is what one CLI run left behind.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "stderr:\n" + r.stderr
}

// hoist runs the CLI in-process, as a user would from a shell.
func hoist(args ...string) result {
	var out, errb bytes.Buffer
	code := run(append([]string{"hoist"}, args...), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// hoistInput runs the CLI in-process with stdin as its standard input.
func hoistInput(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := runWith(append([]string{"hoist"}, args...), strings.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// hoistAt runs hoist against the NATS server at url.
func hoistAt(url string, args ...string) result {
	return hoist(append([]string{"--nats-url", url}, args...)...)
}

func mustRun(t *testing.T, want int, r result) result {
	t.Helper()
	if r.code != want {
		t.Fatalf("want exit %d, got %s", want, r)
	}
	return r
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// head reads a scope's head revision straight from the store.
func head(t *testing.T, url, scope string) uint64 {
	t.Helper()
	r := mustRun(t, 0, hoistAt(url, "scopes", "--json"))
	for _, s := range decodeJSON[[]scopeJSON](t, r.stdout) {
		if s.Scope == scope {
			return s.Revision
		}
	}
	return 0
}

// serverProc is 'hoist server' running in-process.
type serverProc struct {
	cancel context.CancelFunc
	done   chan error
	out    *natstest.SyncBuffer
	log    *natstest.SyncBuffer
	url    string
	once   sync.Once
	err    error
}

// startServerCmd runs 'hoist server args...' in a goroutine. Call wait to
// get its URL once it printed "ready". It is stopped when the test ends.
func startServerCmd(t *testing.T, args ...string) *serverProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &serverProc{cancel: cancel, done: make(chan error, 1), out: &natstest.SyncBuffer{}, log: &natstest.SyncBuffer{}}
	app := newApp(p.out, p.log)
	argv := reorderArgs(app, append([]string{"hoist", "server"}, args...))
	go func() { p.done <- app.RunContext(ctx, argv) }()
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// wait returns the server's URL once it says it is ready.
func (p *serverProc) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for line := range strings.Lines(p.out.String()) {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "ready: "); ok {
				p.url = u
				return u
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("server exited before it was ready: %v\n%s", err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready within %s:\n%s", timeout, p.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels the server's context, as SIGTERM does, and waits for it.
func (p *serverProc) stop() error {
	p.once.Do(func() {
		p.cancel()
		p.err = <-p.done
	})
	return p.err
}

// authWorld is 'hoist server --auth' with a fresh operator: issue makes a
// credential, as runs hoist with one.
type authWorld struct {
	t     *testing.T
	dir   string // the auth directory
	url   string
	out   string // where issued creds go
	admin string // the admin's creds
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "auth")
	mustRun(t, 0, hoist("auth", "init", "--dir", dir))
	p := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--name", "t1", "--auth", dir)
	return &authWorld{t: t, dir: dir, url: p.wait(t, 30*time.Second), out: t.TempDir(), admin: filepath.Join(dir, "admin.creds")}
}

// issue issues a credential named name (args: the role and its flags) and
// returns its creds file.
func (w *authWorld) issue(name string, args ...string) string {
	w.t.Helper()
	creds := filepath.Join(w.out, name+".creds")
	mustRun(w.t, 0, hoist(append([]string{"auth", "issue", "--dir", w.dir, "--name", name, "--out", creds}, args...)...))
	return creds
}

// as runs hoist against the server with the creds file creds.
func (w *authWorld) as(creds string, args ...string) result {
	return hoist(append([]string{"--nats-url", w.url, "--nats-creds", creds}, args...)...)
}
