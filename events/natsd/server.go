package natsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// Config configures an embedded nats-server with JetStream on disk.
type Config struct {
	Name    string // server name; required for clustering
	DataDir string // JetStream store directory
	Listen  string // client host:port; port 0 or -1 picks a free one
	Monitor string // optional HTTP monitoring host:port

	ClusterName   string
	ClusterListen string   // host:port for routes
	Routes        []string // nats-route://host:port of the other servers
	// ClusterUser and ClusterPassword make every route authenticate: this
	// server accepts only routes that present them, and presents them on
	// the routes it opens. Client auth does not cover routes.
	ClusterUser, ClusterPassword string
	// ClusterTLSCert, ClusterTLSKey and ClusterTLSCA turn on mutual TLS
	// between servers: each presents its certificate and accepts only
	// peers whose certificate ClusterTLSCA signed. The certificate must be
	// valid for both server and client auth, and name the host of every
	// route URL the other servers use.
	ClusterTLSCert, ClusterTLSKey, ClusterTLSCA string

	User, Password string
	Token          string
	// Auth turns on decentralized JWT auth. It excludes User, Password
	// and Token: clients then connect with credentials the operator
	// issued.
	Auth *Auth

	// TLSCert and TLSKey make clients connect with TLS. TLSCA turns on
	// mutual TLS: a client must present a certificate TLSCA signed.
	TLSCert, TLSKey, TLSCA string

	// SyncAlways makes JetStream fsync every write before it acks it, so
	// that an acknowledged event survives a power loss or OS crash. The
	// default (false) is nats-server's: a sync every 2 minutes.
	SyncAlways bool

	Logger *slog.Logger
	Debug  bool
}

// Auth is what a server needs for decentralized JWT auth (package
// auth prepares it from an auth directory): the operator it trusts, the
// system account, and an account resolver. A full resolver takes account
// updates, such as revocations, while the server runs.
type Auth struct {
	Operators     []*jwt.OperatorClaims
	SystemAccount string
	Resolver      server.AccountResolver
	// ClientCreds is the creds file of the server's own client, which
	// sets up hoist's streams.
	ClientCreds string
}

// Server is an embedded nats-server. hoist owns the process's signals, so
// the server runs with NoSigs and is stopped only through Shutdown.
type Server struct {
	ns  *server.Server
	log *slog.Logger
}

// Start starts an embedded server and waits until it accepts client
// connections. Call WaitJetStream before using JetStream.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("start nats server: a data directory is required")
	}
	host, port, err := splitListen(cfg.Listen, 4222)
	if err != nil {
		return nil, fmt.Errorf("start nats server: listen address: %w", err)
	}
	opts := &server.Options{
		ServerName:    cfg.Name,
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      cfg.DataDir,
		NoSigs:        true,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
		MaxPayload:    1 << 20,
		SyncAlways:    cfg.SyncAlways,
	}
	if a := cfg.Auth; a != nil {
		switch {
		case cfg.User != "" || cfg.Token != "":
			return nil, errors.New("start nats server: JWT auth excludes a user or token")
		case len(a.Operators) == 0 || a.SystemAccount == "" || a.Resolver == nil:
			return nil, errors.New("start nats server: JWT auth needs an operator, a system account and an account resolver")
		}
		opts.TrustedOperators, opts.SystemAccount, opts.AccountResolver = a.Operators, a.SystemAccount, a.Resolver
	}
	if cfg.Monitor != "" {
		mh, mp, err := splitListen(cfg.Monitor, 8222)
		if err != nil {
			return nil, fmt.Errorf("start nats server: monitor address: %w", err)
		}
		opts.HTTPHost, opts.HTTPPort = mh, mp
	}
	if cfg.ClusterListen != "" || len(cfg.Routes) > 0 {
		if cfg.Name == "" || cfg.ClusterName == "" {
			return nil, errors.New("start nats server: clustering needs a server name and a cluster name")
		}
		ch, cp, err := splitListen(cfg.ClusterListen, 6222)
		if err != nil {
			return nil, fmt.Errorf("start nats server: cluster address: %w", err)
		}
		opts.Cluster.Name = cfg.ClusterName
		opts.Cluster.Host, opts.Cluster.Port = ch, cp
		if err := secureRoutes(opts, cfg); err != nil {
			return nil, fmt.Errorf("start nats server: %w", err)
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("start nats server: route %q is not a URL like nats-route://host:6222", r)
			}
			// A route presents the credentials in its URL; the peers
			// expect the same ones this server expects.
			if cfg.ClusterUser != "" && u.User == nil {
				u.User = url.UserPassword(cfg.ClusterUser, cfg.ClusterPassword)
			}
			opts.Routes = append(opts.Routes, u)
		}
	} else if cfg.ClusterUser != "" || cfg.ClusterPassword != "" || cfg.ClusterTLSCert != "" || cfg.ClusterTLSKey != "" || cfg.ClusterTLSCA != "" {
		return nil, errors.New("start nats server: route auth and TLS need clustering (a cluster address or routes)")
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSCA != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("start nats server: client TLS needs a certificate and a key")
		}
		// With a CA, nats-server requires and verifies client
		// certificates (tls { verify: true }). The CA alone would only
		// be loaded, and any client would still get in.
		verify := cfg.TLSCA != ""
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CaFile: cfg.TLSCA, Verify: verify})
		if err != nil {
			return nil, fmt.Errorf("start nats server: client tls: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, verify
	}
	// nats-server logs a port it cannot bind and keeps going; the wait
	// below would take its full 10s to notice. Ask the kernel first.
	if err := probeListen(opts.Host, opts.Port); err != nil {
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	ns.SetLoggerV2(&slogAdapter{log: cfg.Logger}, cfg.Debug, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server: not accepting connections on %s within 10s (is the port in use?)", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return &Server{ns: ns, log: cfg.Logger}, nil
}

// probeListen fails at once when host:port cannot be listened on (in use,
// or not an address of this machine). A random port (0 or -1) is not
// probed.
func probeListen(host string, port int) error {
	if port <= 0 {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}

// secureRoutes sets the routes' authentication and mutual TLS.
func secureRoutes(opts *server.Options, cfg Config) error {
	if (cfg.ClusterUser == "") != (cfg.ClusterPassword == "") {
		return errors.New("route auth needs both a user and a password")
	}
	opts.Cluster.Username, opts.Cluster.Password = cfg.ClusterUser, cfg.ClusterPassword
	if cfg.ClusterTLSCert == "" && cfg.ClusterTLSKey == "" && cfg.ClusterTLSCA == "" {
		return nil
	}
	if cfg.ClusterTLSCert == "" || cfg.ClusterTLSKey == "" || cfg.ClusterTLSCA == "" {
		return errors.New("route TLS needs a certificate, a key and a CA")
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.ClusterTLSCert, KeyFile: cfg.ClusterTLSKey, CaFile: cfg.ClusterTLSCA, Verify: true})
	if err != nil {
		return fmt.Errorf("route tls: %w", err)
	}
	// A server both accepts and dials routes, and checks the peer's
	// certificate with the same CA either way (as nats-server does for a
	// cluster tls block).
	tc.RootCAs = tc.ClientCAs
	opts.Cluster.TLSConfig = tc
	return nil
}

// WaitJetStream waits until JetStream can serve requests: for a single
// server that is at once; in a cluster, once a meta leader is elected.
func (s *Server) WaitJetStream(ctx context.Context) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		hs := s.ns.Healthz(&server.HealthzOptions{})
		if hs.Status == "ok" && s.ns.JetStreamIsCurrent() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream not ready: %s (%w)", hs.Error, ctx.Err())
		case <-tick.C:
		}
	}
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Addr is the client listener's address.
func (s *Server) Addr() *net.TCPAddr {
	a, _ := s.ns.Addr().(*net.TCPAddr)
	return a
}

// NATS returns the underlying server, for in-process connections.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server and waits for it. It is safe to call twice.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

func splitListen(addr string, defPort int) (string, int, error) {
	if addr == "" {
		return "127.0.0.1", defPort, nil
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("%q has an invalid port", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// slogAdapter sends nats-server's log lines through slog.
type slogAdapter struct{ log *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.log.Info(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any) {
	a.log.Log(context.Background(), slog.LevelDebug-4, fmt.Sprintf(format, v...))
}
