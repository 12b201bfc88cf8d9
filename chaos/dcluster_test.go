package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// runLabel marks the containers and network of one run.
const runLabel = "hoist.test.chaos"

// dockerCluster is three `hoist server` containers on a private network,
// each on a host of its own as far as the others can tell. Routes
// authenticate with a password (--cluster-user, --cluster-password-file);
// clients with a user and password (--user, --password-file). Each
// container's client and monitoring ports are published on 127.0.0.1 only.
type dockerCluster struct {
	docker  *client.Client
	id      string
	network string
	servers []*clusterServer
	user    string
	pass    string
}

type clusterServer struct {
	name      string // server name, n1-n3
	container string // container name, also its host name on the network
	client    int    // 127.0.0.1 port of its 4222
	monitor   int    // 127.0.0.1 port of its 8222
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startDockerCluster starts the cluster and returns once each server is
// healthy and the host can publish. Everything it made is removed when the
// test ends.
func startDockerCluster(t *testing.T) *dockerCluster {
	t.Helper()
	docker := imagetest.RequireDocker(t)
	image := hoistImage(t, docker)
	c := &dockerCluster{docker: docker, id: randomID(), user: "chaos", pass: randomID() + randomID()}
	labels := map[string]string{imagetest.TestLabel: "1", runLabel: c.id}
	c.network = "hoist-chaos-" + c.id
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := docker.NetworkCreate(ctx, c.network, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	t.Cleanup(func() { c.remove(t) })

	ports := natstest.FreePorts(t, 6)
	var routes []string
	for i := range 3 {
		s := &clusterServer{name: fmt.Sprintf("n%d", i+1), container: fmt.Sprintf("hoist-chaos-%s-n%d", c.id, i+1),
			client: ports[2*i], monitor: ports[2*i+1]}
		c.servers = append(c.servers, s)
		routes = append(routes, "nats-route://"+s.container+":6222")
	}
	// Only the server's user may read the files: the image runs as 65532.
	secrets, err := tarOf([]tarFile{
		{name: "secrets/route-password", mode: 0o600, uid: 65532, gid: 65532, data: []byte(randomID() + randomID() + "\n")},
		{name: "secrets/client-password", mode: 0o600, uid: 65532, gid: 65532, data: []byte(c.pass + "\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	secretTar := secrets.(*bytes.Buffer).Bytes()
	for _, s := range c.servers {
		cmd := []string{"server", "--name", s.name, "--listen", "0.0.0.0:4222", "--data", "/data/server",
			"--monitor", "0.0.0.0:8222", "--cluster-name", "hoist", "--cluster-listen", "0.0.0.0:6222",
			"--routes", strings.Join(routes, ","), "--replicas", "3",
			"--cluster-user", "route", "--cluster-password-file", "/secrets/route-password",
			"--user", c.user, "--password-file", "/secrets/client-password"}
		cfg := &container.Config{Image: image, Cmd: cmd, Labels: labels, Hostname: s.container,
			ExposedPorts: nat.PortSet{"4222/tcp": {}, "8222/tcp": {}}}
		hcfg := &container.HostConfig{NetworkMode: container.NetworkMode(c.network), PortBindings: nat.PortMap{
			"4222/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(s.client)}},
			"8222/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(s.monitor)}},
		}}
		if _, err := docker.ContainerCreate(ctx, cfg, hcfg, nil, nil, s.container); err != nil {
			t.Fatalf("create %s: %v", s.container, err)
		}
		if err := docker.CopyToContainer(ctx, s.container, "/", bytes.NewReader(secretTar), container.CopyToContainerOptions{}); err != nil {
			t.Fatalf("copy secrets into %s: %v", s.container, err)
		}
		if err := docker.ContainerStart(ctx, s.container, container.StartOptions{}); err != nil {
			t.Fatalf("start %s: %v", s.container, err)
		}
	}
	start := time.Now()
	for i := range c.servers {
		c.waitHealthy(t, i, 90*time.Second)
	}
	t.Logf("cluster %s healthy after %s", c.id, time.Since(start).Round(time.Millisecond))
	return c
}

// remove force-removes the run's containers (and their volumes), then its
// network, all found by the run's label.
func (c *dockerCluster) remove(t *testing.T) {
	if t.Failed() {
		for _, s := range c.servers {
			t.Logf("--- %s log (tail):\n%s", s.container, tail(c.logs(s), 40))
		}
	}
	imagetest.RemoveByLabel(t, c.docker, runLabel+"="+c.id)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nets, err := c.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", runLabel+"="+c.id))})
	if err != nil {
		t.Errorf("cleanup: list networks: %v", err)
		return
	}
	for _, n := range nets {
		if err := c.docker.NetworkRemove(ctx, n.ID); err != nil {
			t.Errorf("cleanup: remove network %s: %v", n.Name, err)
		}
	}
}

func (c *dockerCluster) logs(s *clusterServer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.docker.ContainerLogs(ctx, s.container, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "200"})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, rc)
	return out.String()
}

// url is server i's client URL on the host; urls is all three.
func (c *dockerCluster) url(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.servers[i].client)
}

func (c *dockerCluster) urls() string {
	var us []string
	for i := range c.servers {
		us = append(us, c.url(i))
	}
	return strings.Join(us, ",")
}

// env is what host processes (agents, the balancer, the CLI) need.
func (c *dockerCluster) env() []string {
	return []string{"HOIST_NATS_URL=" + c.urls(), "HOIST_NATS_USER=" + c.user, "HOIST_NATS_PASSWORD=" + c.pass, "HOIST_LOG_FORMAT=json"}
}

// store opens a store on a connection to urls, closed when the test ends.
// The connection pings its server every second: a server cut off the
// network sends no reset, and with nats.go's default (a ping every two
// minutes, two unanswered) a client would stay attached to it for minutes.
// store.Connect keeps that default; see docs/reliability.md.
func (c *dockerCluster) store(t *testing.T, urls string) *store.Store {
	t.Helper()
	nc, err := nats.Connect(urls, nats.UserInfo(c.user, c.pass), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3), nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var st *store.Store
	natstest.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err = store.Open(ctx, nc, store.Options{})
		return err
	})
	return st
}

// waitHealthy waits for server i's /healthz to answer 200: JetStream is
// enabled and its streams are current.
func (c *dockerCluster) waitHealthy(t *testing.T, i int, timeout time.Duration) {
	t.Helper()
	natstest.Eventually(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.servers[i].monitor), nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", c.servers[i].name, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: healthz %d", c.servers[i].name, res.StatusCode)
		}
		return nil
	})
}

// kill is docker kill: SIGKILL, no shutdown.
func (c *dockerCluster) kill(t *testing.T, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.docker.ContainerKill(ctx, c.servers[i].container, "KILL"); err != nil {
		t.Fatalf("kill %s: %v", c.servers[i].name, err)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		if imagetest.Running(t, c.docker, c.servers[i].container) {
			return fmt.Errorf("%s still runs", c.servers[i].name)
		}
		return nil
	})
}

// start starts server i again, on the same data and ports.
func (c *dockerCluster) start(t *testing.T, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.docker.ContainerStart(ctx, c.servers[i].container, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", c.servers[i].name, err)
	}
}

// disconnect cuts server i off the network: from the other servers and
// from the host's clients alike.
func (c *dockerCluster) disconnect(t *testing.T, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.docker.NetworkDisconnect(ctx, c.network, c.servers[i].container, false); err != nil {
		t.Fatalf("disconnect %s: %v", c.servers[i].name, err)
	}
}

func (c *dockerCluster) connect(t *testing.T, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.docker.NetworkConnect(ctx, c.network, c.servers[i].container, &network.EndpointSettings{}); err != nil {
		t.Fatalf("connect %s: %v", c.servers[i].name, err)
	}
}

// exec runs /hoist args inside server i's container, bounded by timeout.
func (c *dockerCluster) exec(t *testing.T, i int, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	name := c.servers[i].container
	ex, err := c.docker.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: append([]string{"/hoist"}, args...),
		Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec in %s: %v", name, err)
	}
	start := time.Now()
	att, err := c.docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec in %s: %v", name, err)
	}
	defer att.Close()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, att.Reader); err != nil {
		t.Fatalf("exec in %s: %v", name, err)
	}
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start), code: -1}
	if in, err := c.docker.ContainerExecInspect(ctx, ex.ID); err == nil && !in.Running {
		r.code = in.ExitCode
	}
	return r
}

// streamView is one server's own view of a stream, from its /jsz.
type streamView struct {
	Name    string `json:"name"`
	Cluster struct {
		Leader   string `json:"leader"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
			Lag     uint64 `json:"lag"`
		} `json:"replicas"`
	} `json:"cluster"`
	State struct {
		Msgs     uint64 `json:"messages"`
		Bytes    uint64 `json:"bytes"`
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"state"`
}

// stream reads server i's view of stream from its monitoring port.
func (c *dockerCluster) stream(i int, stream string) (*streamView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true", c.servers[i].monitor), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.servers[i].name, err)
	}
	defer res.Body.Close()
	var jsz struct {
		Accounts []struct {
			Streams []streamView `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jsz); err != nil {
		return nil, fmt.Errorf("%s: decode /jsz: %w", c.servers[i].name, err)
	}
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			if s.Name == stream {
				return &s, nil
			}
		}
	}
	return nil, fmt.Errorf("%s has no stream %s", c.servers[i].name, stream)
}

var errNoLeader = errors.New("no stream leader")

// leader is the index of stream's leader, as the first of the given
// servers that answers sees it.
func (c *dockerCluster) leader(stream string, ask ...int) (int, error) {
	var errs []error
	for _, i := range ask {
		v, err := c.stream(i, stream)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j, s := range c.servers {
			if v.Cluster.Leader == s.name {
				return j, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.servers[i].name, errNoLeader))
	}
	return -1, errors.Join(errs...)
}

// waitCurrent waits until the stream has a leader and every replica is
// current, and with same, until every server holds the same state.
func (c *dockerCluster) waitCurrent(t *testing.T, stream string, same bool, timeout time.Duration) {
	t.Helper()
	natstest.Eventually(t, timeout, func() error {
		var first *streamView
		for i := range c.servers {
			v, err := c.stream(i, stream)
			if err != nil {
				return err
			}
			if v.Cluster.Leader == "" {
				return fmt.Errorf("%s sees no leader of %s", c.servers[i].name, stream)
			}
			// Only the leader knows how current its followers are.
			for _, r := range v.Cluster.Replicas {
				if v.Cluster.Leader == c.servers[i].name && (!r.Current || r.Offline) {
					return fmt.Errorf("leader %s sees replica %s of %s not current", c.servers[i].name, r.Name, stream)
				}
			}
			if first == nil {
				first = v
			} else if same && v.State != first.State {
				return fmt.Errorf("%s holds %+v of %s, %s holds %+v", c.servers[i].name, v.State, stream, c.servers[0].name, first.State)
			}
		}
		return nil
	})
}
