package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/natsd"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/internal/tlstest"
)

// startTLSServer runs a server with cfg's TLS settings on a random port.
func startTLSServer(t *testing.T, cfg natsd.Config) *natsd.Server {
	t.Helper()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	if cfg.Name == "" {
		cfg.Name = "tls"
	}
	s, err := natsd.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func tlsURL(s *natsd.Server) string { return fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().Port) }

// With a CA, the server requires client certificates that CA signed: a
// client with none, or with one from a foreign CA, is refused and told
// why; one with a good certificate publishes and reads.
func TestServerRequiresClientCertificates(t *testing.T) {
	ca, foreign := tlstest.NewCA(t, "hoist"), tlstest.NewCA(t, "foreign")
	cert := ca.Server(t, "server")
	s := startTLSServer(t, natsd.Config{TLSCert: cert.CertFile, TLSKey: cert.KeyFile, TLSCA: ca.CertFile})
	url := tlsURL(s)
	good, stranger := ca.Client(t, "alice"), foreign.Client(t, "mallory")

	refused := []struct {
		name string
		o    store.ConnectOptions
		want string
	}{
		{"no client certificate", store.ConnectOptions{TLSCA: ca.CertFile},
			"connect to NATS at " + url + ": tls: the server requires a client certificate (mutual TLS) and none was given: pass --nats-cert and --nats-key ("},
		{"a foreign CA's client certificate", store.ConnectOptions{TLSCA: ca.CertFile, TLSCert: stranger.CertFile, TLSKey: stranger.KeyFile},
			"connect to NATS at " + url + ": tls: the server requires a client certificate signed by its CA, and --nats-cert " + stranger.CertFile + " is not ("},
		{"no CA for the server's certificate", store.ConnectOptions{TLSCert: good.CertFile, TLSKey: good.KeyFile},
			"connect to NATS at " + url + ": tls: the server's certificate is not signed by a CA this host trusts: give its CA with --nats-ca (x509: certificate signed by unknown authority)"},
		{"a foreign CA for the server's certificate", store.ConnectOptions{TLSCA: foreign.CertFile, TLSCert: good.CertFile, TLSKey: good.KeyFile},
			"connect to NATS at " + url + ": tls: the server's certificate is not signed by --nats-ca " + foreign.CertFile + " (x509: certificate signed by unknown authority)"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			c.o.URL = url
			nc, err := store.Connect(c.o)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			var tlsErr *store.TLSError
			if !errors.As(err, &tlsErr) {
				t.Fatalf("%T %v is not a TLSError", err, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error\n%s\nwant\n%s…", err, c.want)
			}
		})
	}

	nc, err := store.Connect(store.ConnectOptions{URL: url, TLSCA: ca.CertFile, TLSCert: good.CertFile, TLSKey: good.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.WaitJetStream(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scope := events.MustParseScope("acme.prod.tls")
	if _, err := st.Append(ctx, &events.Event{Scope: scope, Actor: "alice", Data: &events.Scaled{Replicas: 2}}, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := st.ScopeHistory(ctx, scope, 0)
	if err != nil || len(h.Events()) != 1 {
		t.Fatalf("history %+v, %v", h, err)
	}
}

// A server certificate that does not name the host dialled, and a server
// without TLS for a client that asks for it, are named as such.
func TestConnectNamesServerTLSProblems(t *testing.T) {
	ca := tlstest.NewCA(t, "hoist")
	elsewhere := ca.Server(t, "elsewhere", "127.0.0.2")
	s := startTLSServer(t, natsd.Config{TLSCert: elsewhere.CertFile, TLSKey: elsewhere.KeyFile})
	plain := startTLSServer(t, natsd.Config{})
	cases := []struct {
		name, url string
		want      string
	}{
		{"name mismatch", tlsURL(s),
			"connect to NATS at " + tlsURL(s) + ": tls: the server's certificate does not name 127.0.0.1: connect by a name or address it holds, or reissue it (x509: certificate is valid for 127.0.0.2, not 127.0.0.1)"},
		{"no TLS on the server", plain.ClientURL(),
			"connect to NATS at " + plain.ClientURL() + ": tls: the server does not offer TLS, and --nats-ca, --nats-cert or a tls:// URL ask for it (nats: secure connection not available)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nc, err := store.Connect(store.ConnectOptions{URL: c.url, TLSCA: ca.CertFile})
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			var tlsErr *store.TLSError
			if !errors.As(err, &tlsErr) {
				t.Fatalf("%T %v is not a TLSError", err, err)
			}
			// The sentence is what an operator gets: it is the point here.
			if err.Error() != c.want {
				t.Fatalf("error\n%s\nwant\n%s", err, c.want)
			}
		})
	}
}

// Routes with TLS and a password: a server without them (or with a
// foreign CA's certificate, or the wrong password) does not join, has no
// route, and a client on it reads no stream; one with them joins and
// serves the streams.
func TestRoutesRequireCredentials(t *testing.T) {
	ca, foreign := tlstest.NewCA(t, "hoist"), tlstest.NewCA(t, "foreign")
	ports := natstest.FreePorts(t, 3)
	routes := func(of ...int) []string {
		var rs []string
		for _, i := range of {
			rs = append(rs, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
		}
		return rs
	}
	member := func(name string, port int, routes []string, log *natstest.SyncBuffer) natsd.Config {
		c := ca.Server(t, name)
		return natsd.Config{
			Name: name, ClusterName: "hoist", ClusterListen: fmt.Sprintf("127.0.0.1:%d", port), Routes: routes,
			ClusterUser: "route", ClusterPassword: "s3cret",
			ClusterTLSCert: c.CertFile, ClusterTLSKey: c.KeyFile, ClusterTLSCA: ca.CertFile,
			Logger: slog.New(slog.NewTextHandler(log, nil)),
		}
	}
	// Two members form the cluster and hold hoist's streams.
	var n1Log, n2Log natstest.SyncBuffer
	n1 := startTLSServer(t, member("n1", ports[0], routes(1), &n1Log))
	n2 := startTLSServer(t, member("n2", ports[1], routes(0), &n2Log))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, s := range []*natsd.Server{n1, n2} {
		if err := s.WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := store.Connect(store.ConnectOptions{URL: n1.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := store.Open(ctx, nc, store.Options{}); err != nil {
		t.Fatal(err)
	}
	n1Routes := n1.NATS().NumRoutes()

	rogues := []struct {
		name   string
		modify func(*natsd.Config)
	}{
		{"no route TLS or auth (a stock nats-server)", func(c *natsd.Config) {
			c.ClusterUser, c.ClusterPassword, c.ClusterTLSCert, c.ClusterTLSKey, c.ClusterTLSCA = "", "", "", "", ""
		}},
		{"the password without TLS", func(c *natsd.Config) { c.ClusterTLSCert, c.ClusterTLSKey, c.ClusterTLSCA = "", "", "" }},
		{"TLS without the password", func(c *natsd.Config) { c.ClusterUser, c.ClusterPassword = "", "" }},
		{"the wrong password", func(c *natsd.Config) { c.ClusterPassword = "guess" }},
		{"a foreign CA's certificate", func(c *natsd.Config) {
			f := foreign.Server(t, "rogue")
			c.ClusterTLSCert, c.ClusterTLSKey, c.ClusterTLSCA = f.CertFile, f.KeyFile, foreign.CertFile
		}},
	}
	for i, r := range rogues {
		t.Run(r.name, func(t *testing.T) {
			var rogueLog natstest.SyncBuffer
			before := n1Log.String()
			cfg := member(fmt.Sprintf("rogue%d", i), 0, routes(0), &rogueLog)
			r.modify(&cfg)
			rogue := startTLSServer(t, cfg)
			defer rogue.Shutdown()
			// One side or the other logs the refused route: wait for
			// that (or a route), then check that nothing got through.
			natstest.Eventually(t, 10*time.Second, func() error {
				refused := strings.Contains(strings.TrimPrefix(n1Log.String(), before), "level=ERROR") || strings.Contains(rogueLog.String(), "level=ERROR")
				if refused || rogue.NATS().NumRoutes() > 0 {
					return nil
				}
				return errors.New("no refused route in the logs yet")
			})
			if n := rogue.NATS().NumRoutes(); n != 0 {
				t.Fatalf("the rogue has %d routes", n)
			}
			if n := n1.NATS().NumRoutes(); n != n1Routes {
				t.Fatalf("n1 has %d routes, %d before the rogue", n, n1Routes)
			}
			if err := readEventsStream(t, rogue.ClientURL()); err == nil {
				t.Fatal("a client on the rogue reads the events stream")
			}
		})
	}

	// A third member with the credentials joins, and its clients read
	// the streams.
	var n3Log natstest.SyncBuffer
	n3 := startTLSServer(t, member("n3", ports[2], routes(0, 1), &n3Log))
	natstest.Eventually(t, 30*time.Second, func() error {
		if n := n3.NATS().NumRoutes(); n == 0 {
			return errors.New("n3 has no route")
		}
		return readEventsStream(t, n3.ClientURL())
	})
}

// readEventsStream looks the events stream up through the server at url.
func readEventsStream(t *testing.T, url string) error {
	nc, err := store.Connect(store.ConnectOptions{URL: url})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = js.Stream(ctx, events.EventsStream)
	return err
}
