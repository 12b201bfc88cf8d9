package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/internal/natstest"

	"github.com/hoist-dev/hoist/events/store"
)

// initDir sets up an auth directory in a temp dir.
func initDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "auth")
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

type serverOpts struct {
	name        string
	clusterPort int   // 0: not clustered
	routePorts  []int // the other servers' cluster ports
}

// startServer runs an embedded JetStream server trusting dir's operator,
// on a random port. It is shut down when the test ends.
func startServer(t *testing.T, dir string, so serverOpts) *server.Server {
	t.Helper()
	set, err := ServerOptions(dir, filepath.Join(t.TempDir(), "jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, set, so)
}

func startServerWith(t *testing.T, set ServerSettings, sos ...serverOpts) *server.Server {
	t.Helper()
	var so serverOpts
	if len(sos) > 0 {
		so = sos[0]
	}
	if so.name == "" {
		so.name = "s1"
	}
	data := t.TempDir()
	opts := &server.Options{
		ServerName: so.name,
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   filepath.Join(data, "js"),
		NoSigs:     true,
		NoLog:      true,
	}
	if so.clusterPort != 0 {
		opts.Cluster.Name = "hoist-test"
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", so.clusterPort
		for _, p := range so.routePorts {
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
		}
	}
	opts.TrustedOperators, opts.SystemAccount, opts.AccountResolver = set.Operators, set.SystemAccount, set.Resolver
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("HOIST_TEST_NATS_LOG") != "" {
		s.ConfigureLogger()
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return s
}

// waitJetStream waits until the server answers JetStream health checks.
func waitJetStream(t *testing.T, servers ...*server.Server) {
	t.Helper()
	natstest.Eventually(t, 30*time.Second, func() error {
		for _, s := range servers {
			if hs := s.Healthz(&server.HealthzOptions{JSEnabledOnly: true}); hs.Status != "ok" {
				return fmt.Errorf("%s: %s", s.Name(), hs.Error)
			}
		}
		return nil
	})
}

// client is a connection whose permission violations are collected.
type client struct {
	t    *testing.T
	nc   *nats.Conn
	errs chan error
}

// connect connects with a creds file the way hoist does: with the inbox
// prefix of the credential's name.
func connect(t *testing.T, url, creds string) *client {
	t.Helper()
	c, err := tryConnect(url, creds)
	if err != nil {
		t.Fatalf("connect with %s: %v", filepath.Base(creds), err)
	}
	t.Cleanup(c.nc.Close)
	c.t = t
	return c
}

func tryConnect(url, creds string, extra ...nats.Option) (*client, error) {
	c := &client{errs: make(chan error, 100)}
	opts := []nats.Option{
		nats.UserCredentials(creds),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}),
	}
	name, err := store.CredsName(creds)
	if err != nil {
		return nil, err
	}
	if name != "admin" && name != "server" {
		opts = append(opts, nats.CustomInboxPrefix(inboxPrefix(name)))
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	return c, nil
}

// issue writes a creds file for the role.
func issue(t *testing.T, dir string, r Role) string {
	t.Helper()
	creds, _, err := Issue(dir, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), r.Name+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// errDenied is what a probe returns when the server reported a permission
// violation for it.
var errDenied = errors.New("denied")

// request sends a request and returns its reply, or errDenied as soon as
// the connection's error handler reports a permissions violation. Probes
// run one at a time, so a violation belongs to the probe that waits.
func (c *client) request(subject string, body []byte) (*nats.Msg, error) {
	c.t.Helper()
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest(subject, inbox, body); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan *nats.Msg, 1)
	go func() {
		if m, err := sub.NextMsgWithContext(ctx); err == nil {
			got <- m
		}
	}()
	select {
	case m := <-got:
		return m, nil
	case err := <-c.errs:
		if errors.Is(err, nats.ErrPermissionViolation) {
			return nil, errDenied
		}
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("no reply and no permission error for %s within 5s", subject)
	}
}

// subscribeDenied waits for the server to refuse a subscription. (An
// allowed subscription shows itself by receiving: every request reply
// arrives on the credential's inbox subscription.)
func (c *client) subscribeDenied(subject string) error {
	c.t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	select {
	case err := <-c.errs:
		if errors.Is(err, nats.ErrPermissionViolation) {
			return nil
		}
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("subscribing to %s was not refused within 5s", subject)
	}
}

// apiError is the error field of a JetStream API reply.
func apiError(m *nats.Msg) *jetstream.APIError {
	var r struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return &jetstream.APIError{Description: "undecodable reply: " + string(m.Data)}
	}
	return r.Error
}

// createStreams creates hoist's four streams, with direct gets, as admin.
func createStreams(t *testing.T, url, dir string, replicas int) {
	t.Helper()
	admin := connect(t, url, filepath.Join(dir, adminCreds))
	js, err := jetstream.New(admin.nc)
	if err != nil {
		t.Fatal(err)
	}
	for name, subjects := range map[string][]string{
		"HOIST_EVENTS":   {"hoist.scope.>", "hoist.node.>"},
		"HOIST_SCORES":   {"hoist.score.>"},
		"HOIST_BACKENDS": {"hoist.backends.>"},
		"HOIST_REPORTS":  {"hoist.status.>"},
	} {
		natstest.Eventually(t, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, AllowDirect: true, Replicas: replicas})
			return err
		})
	}
}
