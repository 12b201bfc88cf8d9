package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
)

// Config configures a Docker runtime.
type Config struct {
	Node string // required
	// Client is the Docker client. Default: from the environment
	// (DOCKER_HOST …) with API version negotiation; Close closes it.
	Client *client.Client
	// HostIP is the address published ports bind on. Default 0.0.0.0.
	HostIP string
	Logger *slog.Logger
	// CallTimeout bounds each API call. Default 30s.
	CallTimeout time.Duration
	// PullTimeout bounds one image pull. Default 5m.
	PullTimeout time.Duration
	// PullRetry is how long a failed pull of an image for one revision is
	// remembered before it is tried again. Default 10m.
	PullRetry time.Duration
}

// Runtime runs replicas as containers through the Docker Engine API. It
// sees and touches only containers labelled hoist.managed=true and
// hoist.node=<its node>.
type Runtime struct {
	c           *client.Client
	own         bool // c was made here and is closed by Close
	node        string
	hostIP      string
	log         *slog.Logger
	timeout     time.Duration
	pullTimeout time.Duration
	pullRetry   time.Duration

	mu    sync.Mutex
	pulls map[string]pullAttempt // by image
}

var _ deploy.Runtime = (*Runtime)(nil)

// New returns a Docker runtime for cfg.Node.
func New(cfg Config) (*Runtime, error) {
	if err := events.ValidateNodeName(cfg.Node); err != nil {
		return nil, fmt.Errorf("new docker runtime: %w", err)
	}
	d := &Runtime{c: cfg.Client, node: cfg.Node, hostIP: cfg.HostIP, log: cfg.Logger,
		timeout: cfg.CallTimeout, pullTimeout: cfg.PullTimeout, pullRetry: cfg.PullRetry, pulls: map[string]pullAttempt{}}
	if d.c == nil {
		c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("new docker runtime: %w", err)
		}
		d.c, d.own = c, true
	}
	if d.hostIP == "" {
		d.hostIP = "0.0.0.0"
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("runtime", "docker")
	if d.timeout <= 0 {
		d.timeout = 30 * time.Second
	}
	if d.pullTimeout <= 0 {
		d.pullTimeout = 5 * time.Minute
	}
	if d.pullRetry <= 0 {
		d.pullRetry = 10 * time.Minute
	}
	return d, nil
}

// Close closes the client if New made it.
func (d *Runtime) Close() error {
	if d.own {
		return d.c.Close()
	}
	return nil
}

func (d *Runtime) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.timeout)
}

func (d *Runtime) ownFilter() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", deploy.LabelManaged+"=true"),
		filters.Arg("label", deploy.LabelNode+"="+d.node),
	)
}

// List returns this node's containers, live ones inspected for their
// health, start time and published port.
func (d *Runtime) List(ctx context.Context) ([]deploy.Replica, error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	cs, err := d.c.ContainerList(cctx, container.ListOptions{All: true, Filters: d.ownFilter()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]deploy.Replica, 0, len(cs))
	for _, c := range cs {
		if _, ok := deploy.ReplicaFromLabels(c.Labels, d.node); !ok {
			continue
		}
		ci, err := d.inspect(ctx, c.ID)
		if errors.Is(err, deploy.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		if rep, ok := d.replica(ci); ok {
			out = append(out, rep)
		}
	}
	return out, nil
}

func (d *Runtime) inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	ci, err := d.c.ContainerInspect(cctx, id)
	if cerrdefs.IsNotFound(err) {
		return ci, fmt.Errorf("container %s: %w", deploy.ShortID(id), deploy.ErrNotFound)
	}
	if err != nil {
		return ci, fmt.Errorf("inspect container %s: %w", deploy.ShortID(id), err)
	}
	if ci.ContainerJSONBase == nil || ci.State == nil || ci.Config == nil {
		return ci, fmt.Errorf("inspect container %s: incomplete answer", deploy.ShortID(id))
	}
	return ci, nil
}

// replica reads a Replica from an inspected container; ok is false when
// the container is not this node's.
func (d *Runtime) replica(ci container.InspectResponse) (deploy.Replica, bool) {
	rep, ok := deploy.ReplicaFromLabels(ci.Config.Labels, d.node)
	if !ok {
		return deploy.Replica{}, false
	}
	rep.ID, rep.Name = ci.ID, strings.TrimPrefix(ci.Name, "/")
	rep.State = deploy.ReplicaState(ci.State.Status)
	rep.StartedAt, _ = time.Parse(time.RFC3339Nano, ci.State.StartedAt)
	if h := ci.State.Health; h != nil && h.Status != container.NoHealthcheck && h.Status != "" {
		rep.Healthy = new(h.Status == container.Healthy)
	}
	if ci.NetworkSettings != nil {
		rep.HostPort = publishedPort(ci.NetworkSettings.Ports)
	}
	rep.Detail = stateDetail(ci.State)
	return rep, true
}

// publishedPort is the host port of the one port the agent publishes.
func publishedPort(ports nat.PortMap) int {
	for _, bindings := range ports {
		for _, b := range bindings {
			if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
				return p
			}
		}
	}
	return 0
}

func stateDetail(s *container.State) string {
	switch {
	case s.Running:
		return ""
	case s.OOMKilled:
		return fmt.Sprintf("out of memory (exit code %d)", s.ExitCode)
	case s.Error != "":
		return s.Error
	case s.Status == container.StateExited:
		return fmt.Sprintf("exit code %d", s.ExitCode)
	}
	return ""
}

// Start creates and starts a container for rs. A spec without an image
// cannot run on Docker. The image is pulled when it is not present; a
// failed pull is not repeated for the same revision within PullRetry.
// A container that already has the replica's name is adopted when it is
// ours, runs and matches; removed and replaced when it is ours and does
// not; and never touched when it is not ours (ErrForeign).
func (d *Runtime) Start(ctx context.Context, rs deploy.ReplicaSpec) (deploy.Replica, error) {
	if rs.Spec.Image == "" {
		return deploy.Replica{}, fmt.Errorf("%w: the docker runtime runs an image, and the spec has only a command (%s)",
			deploy.ErrUnsupported, strings.Join(rs.Spec.Command, " "))
	}
	name := deploy.ReplicaName(d.node, rs)
	cfg, hc := d.containerConfig(rs)
	id, err := d.create(ctx, cfg, hc, name, rs.Secrets)
	switch {
	case cerrdefs.IsNotFound(err):
		if err := d.pull(ctx, rs.Spec.Image, rs.Revision); err != nil {
			return deploy.Replica{}, err
		}
		id, err = d.create(ctx, cfg, hc, name, rs.Secrets)
	case cerrdefs.IsConflict(err):
		var rep deploy.Replica
		var adopted bool
		if rep, adopted, err = d.resolveCollision(ctx, name, rs); err != nil {
			return deploy.Replica{}, err
		}
		if adopted {
			return rep, nil
		}
		id, err = d.create(ctx, cfg, hc, name, rs.Secrets)
	}
	if err != nil {
		return deploy.Replica{}, fmt.Errorf("create container %s: %w", name, err)
	}

	for attempt := 1; ; attempt++ {
		err := d.start(ctx, id)
		if err == nil {
			break
		}
		d.removeQuietly(ctx, id)
		// Docker picks a host port without checking that no other process
		// holds it; a new container gets another pick.
		if !isHostPortTaken(err) || attempt == 3 {
			return deploy.Replica{}, fmt.Errorf("start container %s: %w", name, err)
		}
		d.log.Info("host port taken by another process; recreating the container for another port", "name", name, "err", err)
		if err := d.waitGone(ctx, id); err != nil {
			return deploy.Replica{}, fmt.Errorf("start container %s: %w", name, err)
		}
		if id, err = d.create(ctx, cfg, hc, name, rs.Secrets); err != nil {
			return deploy.Replica{}, fmt.Errorf("create container %s: %w", name, err)
		}
	}
	ci, err := d.inspect(ctx, id)
	if err != nil {
		return deploy.Replica{}, err
	}
	rep, _ := d.replica(ci)
	return rep, nil
}

func (d *Runtime) start(ctx context.Context, id string) error {
	sctx, cancel := d.call(ctx)
	defer cancel()
	return d.c.ContainerStart(sctx, id, container.StartOptions{})
}

// isHostPortTaken reports a start that failed because the host port Docker
// chose is in use. The engine reports it only as text (a system error from
// its port mapper), so this is the one place hoist reads an error message.
func isHostPortTaken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated")
}

func (d *Runtime) containerConfig(rs deploy.ReplicaSpec) (*container.Config, *container.HostConfig) {
	s := rs.Spec
	cfg := &container.Config{
		Image:  s.Image,
		Env:    deploy.ReplicaEnv(d.node, rs, s.Port),
		Labels: deploy.Labels(d.node, rs),
	}
	if len(s.Command) > 0 {
		cfg.Cmd = s.Command // replaces the image's CMD; its ENTRYPOINT stays
	}
	restart := s.Restart
	if restart == "" {
		restart = "no" // the agent repairs replicas itself
	}
	hc := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(restart)},
		Resources: container.Resources{
			Memory:   s.MemoryMB << 20,
			NanoCPUs: int64(math.Round(s.CPUs * 1e9)),
		},
	}
	if s.Port > 0 {
		p := nat.Port(strconv.Itoa(s.Port) + "/tcp")
		cfg.ExposedPorts = nat.PortSet{p: {}}
		// HostPort "": Docker picks a free port; Start reads it back.
		hc.PortBindings = nat.PortMap{p: {{HostIP: d.hostIP, HostPort: ""}}}
	}
	return cfg, hc
}

// create creates a container and writes the secrets that are files into
// it before it ever starts. They live only in the container's own
// filesystem: not on the host's disk, not in `docker inspect`.
func (d *Runtime) create(ctx context.Context, cfg *container.Config, hc *container.HostConfig, name string, secrets []deploy.Secret) (string, error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	resp, err := d.c.ContainerCreate(cctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", err
	}
	if err := d.copySecretFiles(cctx, resp.ID, secrets); err != nil {
		d.removeQuietly(ctx, resp.ID)
		return "", err
	}
	return resp.ID, nil
}

// resolveCollision deals with a container that holds the name a new
// replica wants, left by a crash between create and the next list.
func (d *Runtime) resolveCollision(ctx context.Context, name string, rs deploy.ReplicaSpec) (deploy.Replica, bool, error) {
	ci, err := d.inspect(ctx, name)
	if errors.Is(err, deploy.ErrNotFound) {
		return deploy.Replica{}, false, nil // gone meanwhile: create again
	}
	if err != nil {
		return deploy.Replica{}, false, err
	}
	rep, ours := d.replica(ci)
	if !ours {
		return deploy.Replica{}, false, fmt.Errorf("%w: container %q exists without this node's hoist labels; remove or rename it", deploy.ErrForeign, name)
	}
	if rep.State == deploy.StateRunning && rep.Scope == rs.Scope && rep.Track == rs.Track && rep.Index == rs.Index && rep.SpecHash == rs.SpecHash {
		d.log.Info("adopting running container", "name", name, "id", deploy.ShortID(rep.ID))
		return rep, true, nil
	}
	d.log.Info("removing stale container with the replica's name", "name", name, "state", rep.State)
	rctx, cancel := d.call(ctx)
	defer cancel()
	err = d.c.ContainerRemove(rctx, ci.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	// A conflict here is a removal already under way (docker rm -f by
	// hand): wait for it like for ours, rather than fail the rollout.
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		return deploy.Replica{}, false, fmt.Errorf("remove stale container %s: %w", name, err)
	}
	if err := d.waitGone(ctx, ci.ID); err != nil {
		return deploy.Replica{}, false, fmt.Errorf("remove stale container %s: %w", name, err)
	}
	return deploy.Replica{}, false, nil
}

// waitGone polls until the container id no longer exists, so its name can
// be taken again. Docker removes a container asynchronously.
func (d *Runtime) waitGone(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := d.inspect(ctx, id); errors.Is(err, deploy.ErrNotFound) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still being removed after %s", d.timeout)
		case <-tick.C:
		}
	}
}

func (d *Runtime) removeQuietly(ctx context.Context, id string) {
	rctx, cancel := d.call(context.WithoutCancel(ctx))
	defer cancel()
	if err := d.c.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("remove container that failed to start", "id", deploy.ShortID(id), "err", err)
	}
}

// owned inspects id and refuses anything that is not this node's: the
// last guard before the agent stops or removes a container.
func (d *Runtime) owned(ctx context.Context, id string) (container.InspectResponse, error) {
	ci, err := d.inspect(ctx, id)
	if err != nil {
		return ci, err
	}
	if !deploy.OwnedBy(ci.Config.Labels, d.node) {
		return ci, fmt.Errorf("%w: container %s is not labelled for node %s", deploy.ErrForeign, deploy.ShortID(id), d.node)
	}
	return ci, nil
}

// Stop stops a container: SIGTERM (or the image's stop signal), then
// SIGKILL after timeout.
func (d *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if _, err := d.owned(ctx, id); err != nil {
		return err
	}
	secs := int(math.Ceil(timeout.Seconds()))
	sctx, cancel := context.WithTimeout(ctx, timeout+d.timeout)
	defer cancel()
	err := d.c.ContainerStop(sctx, id, container.StopOptions{Timeout: &secs})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: %w", deploy.ShortID(id), deploy.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", deploy.ShortID(id), err)
	}
	return nil
}

// Remove removes a container and its anonymous volumes.
func (d *Runtime) Remove(ctx context.Context, id string) error {
	if _, err := d.owned(ctx, id); err != nil {
		return err
	}
	rctx, cancel := d.call(ctx)
	defer cancel()
	err := d.c.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: %w", deploy.ShortID(id), deploy.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", deploy.ShortID(id), err)
	}
	return nil
}

// Health reports the container's state and its HEALTHCHECK status, if the
// image has one.
func (d *Runtime) Health(ctx context.Context, id string) (deploy.Health, error) {
	ci, err := d.owned(ctx, id)
	if err != nil {
		return deploy.Health{}, err
	}
	h := deploy.Health{State: deploy.ReplicaState(ci.State.Status), Detail: stateDetail(ci.State)}
	if hc := ci.State.Health; hc != nil && hc.Status != container.NoHealthcheck {
		h.Check = hc.Status
		if n := len(hc.Log); n > 0 && hc.Status != container.Healthy {
			h.Detail = strings.TrimSpace(hc.Log[n-1].Output)
		}
	}
	return h, nil
}
