package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Errors of the Runtime API, for errors.Is.
var (
	// ErrNoSocket: nothing answers at the socket.
	ErrNoSocket = errors.New("HAProxy's stats socket does not answer")
	// ErrNotAdmin: the socket is not at level admin.
	ErrNotAdmin = errors.New("HAProxy's stats socket refuses changes")
	// ErrUnknownBackend: HAProxy has no backend of that name.
	ErrUnknownBackend = errors.New("HAProxy has no such backend")
	// ErrRefused: HAProxy answered a command with an error.
	ErrRefused = errors.New("HAProxy refused a command")
)

// Runtime talks to HAProxy's Runtime API on one stats socket: a Unix
// socket path, or host:port for "stats socket ipv4@..." (tcp). It sends one
// command per connection (HAProxy's non-interactive mode), so nothing
// depends on a connection surviving a reload.
type Runtime struct {
	network, addr string
	timeout       time.Duration
}

// NewRuntime returns a client of socket: "/run/haproxy/admin.sock",
// "unix:/path", "tcp:127.0.0.1:9999" or "127.0.0.1:9999". Each command
// gets timeout (2s when 0).
func NewRuntime(socket string, timeout time.Duration) (*Runtime, error) {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	r := &Runtime{timeout: timeout}
	switch {
	case strings.HasPrefix(socket, "unix:"):
		r.network, r.addr = "unix", strings.TrimPrefix(socket, "unix:")
	case strings.HasPrefix(socket, "tcp:"):
		r.network, r.addr = "tcp", strings.TrimPrefix(socket, "tcp:")
	case strings.Contains(socket, "/"):
		r.network, r.addr = "unix", socket
	default:
		r.network, r.addr = "tcp", socket
	}
	if r.addr == "" {
		return nil, fmt.Errorf("stats socket %q: want a Unix socket path or host:port", socket)
	}
	if r.network == "tcp" {
		if _, _, err := net.SplitHostPort(r.addr); err != nil {
			return nil, fmt.Errorf("stats socket %q: want a Unix socket path (with a /) or host:port: %v", socket, err)
		}
	}
	return r, nil
}

// String names the socket for logs and errors.
func (r *Runtime) String() string {
	if r.network == "unix" {
		return r.addr
	}
	return "tcp:" + r.addr
}

// Do sends one command and returns HAProxy's whole answer.
func (r *Runtime) Do(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, r.network, r.addr)
	if err != nil {
		return "", r.dialError(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("%s: send %q: %w", r, cmd, err)
	}
	out, err := io.ReadAll(io.LimitReader(conn, 16<<20))
	if err != nil {
		return "", fmt.Errorf("%s: read the answer to %q: %w", r, cmd, err)
	}
	ans := string(out)
	if strings.HasPrefix(strings.TrimSpace(ans), "Permission denied") {
		return "", fmt.Errorf("%w: %s answers %q to %q: give it \"level admin\" (stats socket %s level admin)", ErrNotAdmin, r, abbrev(ans), cmd, r.addr)
	}
	return ans, nil
}

func (r *Runtime) dialError(err error) error {
	hint := "is HAProxy running, with \"stats socket " + r.addr + " mode 660 level admin\" in its global section?"
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w: no socket at %s: %s", ErrNoSocket, r, hint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing listens at %s: %s", ErrNoSocket, r, hint)
	case errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: %s: permission denied: run hoist haproxy as a user the socket's mode and owner let in (stats socket ... user/group/mode)", ErrNoSocket, r)
	}
	return fmt.Errorf("%w: %s: %v", ErrNoSocket, r, err)
}

// Servers returns backend's servers with their current sessions.
func (r *Runtime) Servers(ctx context.Context, backend string) ([]Server, error) {
	out, err := r.Do(ctx, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(out), "Can't find backend") {
		return nil, fmt.Errorf("%w: %q (at %s); the backends it has: %s", ErrUnknownBackend, backend, r, r.backendNames(ctx))
	}
	servers, err := parseServersState(out)
	if err != nil {
		return nil, err
	}
	// Servers are listed by id; their sessions by name, from the stats.
	st, err := r.Do(ctx, "show stat "+backend+" 4 -1")
	if err != nil {
		return nil, err
	}
	sess, err := parseSessions(st, backend)
	if err != nil {
		return nil, err
	}
	for i := range servers {
		if n, ok := sess[servers[i].Name]; ok {
			servers[i].Sessions = n
		}
	}
	return servers, nil
}

// backendNames lists HAProxy's backends for an error message.
func (r *Runtime) backendNames(ctx context.Context) string {
	out, err := r.Do(ctx, "show backend")
	if err != nil {
		return "(show backend: " + err.Error() + ")"
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Apply runs one change. A "set server" command succeeds with an empty
// answer, or, for an address, one that says what changed.
func (r *Runtime) Apply(ctx context.Context, backend string, c Change) error {
	cmd := c.Command(backend)
	out, err := r.Do(ctx, cmd)
	if err != nil {
		return err
	}
	ans := strings.TrimSpace(out)
	if ans == "" || c.What == "addr" && (strings.HasPrefix(ans, "IP changed from") || strings.HasPrefix(ans, "no need to change the addr")) {
		return nil
	}
	if strings.HasPrefix(ans, "No such backend") {
		return fmt.Errorf("%w: %q (at %s)", ErrUnknownBackend, backend, r)
	}
	return fmt.Errorf("%w: %q: %s", ErrRefused, cmd, abbrev(ans))
}
