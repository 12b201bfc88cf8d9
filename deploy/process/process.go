package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
)

// Config configures a process runtime.
type Config struct {
	Node    string // required
	DataDir string // required: holds replicas/<id>.json and logs/<scope>-<index>.log
	Logger  *slog.Logger
	// PollInterval is how often Watch looks for processes that died and
	// Stop checks whether one has exited. Default 1s for Watch; Stop polls
	// at most every 50ms.
	PollInterval time.Duration
}

// Runtime runs replicas as local processes: Spec.Command, without an image.
// Each replica gets a free port as PORT when the spec has a port, runs in
// its own process group (so the agent's Ctrl-C does not reach it), and
// writes stdout and stderr to logs/<scope>-<index>.log. Replicas outlive
// the agent: their records in replicas/ let a restarted agent adopt them.
type Runtime struct {
	node string
	dir  string
	log  *slog.Logger
	poll time.Duration

	mu    sync.Mutex
	exits map[string]string // id → how the child this agent started exited
	// reaped is closed when the child's exit is in exits: a child found
	// dead before reap recorded it is waited for, so a replica that exits
	// at once still reports its exit status.
	reaped map[string]chan struct{}
	subs   map[chan deploy.Change]struct{}
}

var _ deploy.Runtime = (*Runtime)(nil)

// New returns a process runtime keeping its state under cfg.DataDir.
func New(cfg Config) (*Runtime, error) {
	if err := processSupported(); err != nil {
		return nil, fmt.Errorf("new process runtime: %w", err)
	}
	if err := events.ValidateNodeName(cfg.Node); err != nil {
		return nil, fmt.Errorf("new process runtime: %w", err)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("new process runtime: no data dir")
	}
	for _, sub := range []string{"replicas", "logs"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("new process runtime: %w", err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	return &Runtime{
		node:   cfg.Node,
		dir:    cfg.DataDir,
		log:    cfg.Logger.With("runtime", "process"),
		poll:   cfg.PollInterval,
		exits:  map[string]string{},
		reaped: map[string]chan struct{}{},
		subs:   map[chan deploy.Change]struct{}{},
	}, nil
}

// List returns this node's replicas: live processes are running, the ones
// whose process is gone are exited (the reconciler removes and replaces
// them).
func (p *Runtime) List(ctx context.Context) ([]deploy.Replica, error) {
	recs, err := p.records()
	if err != nil {
		return nil, err
	}
	out := make([]deploy.Replica, 0, len(recs))
	for _, rec := range recs {
		if rep, ok := p.replica(rec); ok {
			out = append(out, rep)
		}
	}
	return out, nil
}

func (p *Runtime) replica(rec processRecord) (deploy.Replica, bool) {
	rep, ok := deploy.ReplicaFromLabels(rec.Labels, p.node)
	if !ok {
		return deploy.Replica{}, false
	}
	rep.ID, rep.Name = rec.ID, rec.ID
	rep.HostPort = rec.Port
	rep.StartedAt = rec.StartedAt
	rep.State = deploy.StateRunning
	if !rec.alive() {
		rep.State = deploy.StateExited
		rep.Detail = p.exitDetail(rec.ID)
	}
	return rep, true
}

func (p *Runtime) exitDetail(id string) string {
	p.mu.Lock()
	reaped := p.reaped[id]
	p.mu.Unlock()
	if reaped != nil {
		// Our child, dead: Wait returns at once, reap is about to record it.
		select {
		case <-reaped:
		case <-time.After(2 * time.Second):
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.exits[id]; ok {
		return d
	}
	return "exit status unknown (an earlier agent started it; see its log)"
}

// Start runs rs.Spec.Command. A spec with only an image cannot run here.
// A replica of the same name that still runs is adopted, not duplicated.
func (p *Runtime) Start(ctx context.Context, rs deploy.ReplicaSpec) (deploy.Replica, error) {
	if err := ctx.Err(); err != nil {
		return deploy.Replica{}, err
	}
	if len(rs.Spec.Command) == 0 {
		return deploy.Replica{}, fmt.Errorf("%w: the process runtime runs a command, and the spec has only an image (%s)", deploy.ErrUnsupported, rs.Spec.Image)
	}
	for _, s := range rs.Secrets {
		if s.File != "" {
			// A process shares the host's filesystem: no path of its own
			// to put the file at.
			return deploy.Replica{}, fmt.Errorf("%w: secret %s is a file (%s), which only the docker runtime can give a replica; set it without --as-file", deploy.ErrUnsupported, s.Name, s.File)
		}
	}
	id := deploy.ReplicaName(p.node, rs)
	if rec, err := p.readRecord(id); err == nil {
		if rep, ok := p.replica(rec); ok && rep.State == deploy.StateRunning {
			p.log.Info("adopting running replica", "id", id, "pid", rec.PID)
			return rep, nil
		}
		if err := p.Remove(ctx, id); err != nil && !errors.Is(err, deploy.ErrNotFound) {
			return deploy.Replica{}, fmt.Errorf("clear old record of %s: %w", id, err)
		}
	}

	port := 0
	if rs.Spec.Port > 0 {
		var err error
		if port, err = freePort(); err != nil {
			return deploy.Replica{}, err
		}
	}
	logPath := filepath.Join(p.dir, "logs", fmt.Sprintf("%s-%s.log", rs.Scope, rs.Track.Index(rs.Index)))
	// A replica's output is its own business, and may print its secrets.
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return deploy.Replica{}, fmt.Errorf("open replica log: %w", err)
	}
	if err := logf.Chmod(0o600); err != nil { // a log made by an older hoist
		logf.Close()
		return deploy.Replica{}, fmt.Errorf("open replica log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "--- hoist: starting %s (revision %d) at %s\n", id, rs.Revision, time.Now().UTC().Format(time.RFC3339))

	// Not CommandContext: the replica must outlive this call and the agent.
	cmd := exec.Command(rs.Spec.Command[0], rs.Spec.Command[1:]...)
	cmd.Env = append(inheritedEnv(), deploy.ReplicaEnv(p.node, rs, port)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = ownProcessGroup()
	if err := cmd.Start(); err != nil {
		return deploy.Replica{}, fmt.Errorf("start process: %w", err)
	}
	pid := cmd.Process.Pid
	ticks, _ := procStartTicks(pid)
	rec := processRecord{
		ID: id, PID: pid, StartTicks: ticks, Labels: deploy.Labels(p.node, rs), Port: port,
		Command: rs.Spec.Command, Log: logPath, StartedAt: time.Now().UTC(),
	}
	if err := p.writeRecord(rec); err != nil {
		// Without a record the process would be invisible: take it back.
		_ = signalGroup(pid, true)
		_ = cmd.Wait()
		return deploy.Replica{}, err
	}
	reaped := make(chan struct{})
	p.mu.Lock()
	p.reaped[rec.ID] = reaped
	p.mu.Unlock()
	go p.reap(cmd, rec, reaped)
	rep, _ := p.replica(rec)
	rep.State = deploy.StateRunning // even if it died already: Health will tell
	return rep, nil
}

// reap waits for a child this agent started, so it leaves no zombie, and
// tells watchers. The goroutine ends with the child.
func (p *Runtime) reap(cmd *exec.Cmd, rec processRecord, reaped chan struct{}) {
	err := cmd.Wait()
	detail := "exit status 0"
	if err != nil {
		detail = err.Error()
	}
	p.mu.Lock()
	if p.reaped[rec.ID] == reaped { // not a later replica of the same id
		p.exits[rec.ID] = detail
	}
	close(reaped)
	p.mu.Unlock()
	rep, _ := deploy.ReplicaFromLabels(rec.Labels, p.node)
	p.notify(deploy.Change{ID: rec.ID, Scope: rep.Scope, Index: rep.Index, Action: "exit"})
}

// inheritedEnv is the agent's environment minus HOIST_* variables, which
// may hold NATS credentials that replicas have no business seeing.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOIST_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Stop sends SIGTERM to the replica's process group, and SIGKILL once
// timeout has passed.
func (p *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	rec, err := p.readRecord(id)
	if err != nil {
		return err
	}
	if !rec.alive() {
		return nil
	}
	if err := signalGroup(rec.PID, false); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if p.waitGone(ctx, rec, timeout) {
		return nil
	}
	p.log.Warn("replica did not stop in time; killing it", "id", id, "timeout", timeout)
	if err := signalGroup(rec.PID, true); err != nil {
		return fmt.Errorf("kill %s: %w", id, err)
	}
	if !p.waitGone(ctx, rec, 5*time.Second) {
		return fmt.Errorf("stop %s: pid %d still runs after SIGKILL", id, rec.PID)
	}
	return nil
}

// waitGone polls until rec's process is gone, timeout passes or ctx ends.
func (p *Runtime) waitGone(ctx context.Context, rec processRecord, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(min(p.poll, 50*time.Millisecond))
	defer tick.Stop()
	for rec.alive() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return !rec.alive()
		case <-ctx.Done():
			return !rec.alive()
		}
	}
	return true
}

// Remove deletes the record of a replica whose process is gone. Its log
// file stays.
func (p *Runtime) Remove(ctx context.Context, id string) error {
	rec, err := p.readRecord(id)
	if err != nil {
		return err
	}
	if rec.alive() {
		return fmt.Errorf("remove %s: pid %d still runs; stop it first", id, rec.PID)
	}
	if err := os.Remove(p.recordPath(id)); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	p.mu.Lock()
	delete(p.exits, id)
	delete(p.reaped, id)
	p.mu.Unlock()
	return nil
}

// Health reports whether the process runs. Processes have no health check
// of their own; the reconciler probes the spec's health path.
func (p *Runtime) Health(ctx context.Context, id string) (deploy.Health, error) {
	rec, err := p.readRecord(id)
	if err != nil {
		return deploy.Health{}, err
	}
	if !rec.alive() {
		return deploy.Health{State: deploy.StateExited, Detail: p.exitDetail(id)}, nil
	}
	return deploy.Health{State: deploy.StateRunning}, nil
}
