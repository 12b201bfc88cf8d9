package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/natsd"
	"github.com/hoist-dev/hoist/events/store"
)

func serverCommand() *cli.Command {
	env := func(name string) []string {
		return []string{"HOIST_SERVER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	host, _ := os.Hostname()
	return &cli.Command{
		Name:     "server",
		Category: "run",
		Usage:    "run a NATS server with JetStream for hoist, standalone or clustered",
		Description: `Runs an embedded nats-server with JetStream on disk and sets up hoist's streams.
It prints "ready: URL" once JetStream is usable, and stops cleanly on SIGINT or
SIGTERM. Point the other commands at it with HOIST_NATS_URL.

For a cluster, run three servers, each with its own --name and the routes of
the others. Streams are then replicated on 3 servers (--replicas), so losing
one keeps hoist writable.

--auth DIR turns on decentralized JWT auth with the operator of 'hoist auth
init': clients connect with creds files from 'hoist auth issue', and
'hoist auth revoke' takes effect while the server runs. Every server of a
cluster uses the same auth directory (a copy of operator.jwt, accounts/ and
server.creds is enough). A server listening beyond loopback refuses to start
without --auth, --user, --token or --tls-ca, unless --insecure says that is
meant.

--tls-cert/--tls-key make clients connect with TLS; --tls-ca adds mutual TLS:
a client must present a certificate that CA signed (--nats-cert/--nats-key).
Routes between servers have their own security, as client auth does not cover
them: --cluster-tls-cert/--cluster-tls-key/--cluster-tls-ca for mutual TLS
between the servers, and --cluster-user with --cluster-password-file for
route authentication; a server without them cannot join. A --cluster-listen
beyond loopback refuses to start with neither, unless --insecure.

A password or token on the command line shows in ps to every user of the
host: give it in a file (--password-file, --token-file,
--cluster-password-file; the trailing newline is dropped) or in the
HOIST_SERVER_* variable instead.

Example:
   hoist server --data /var/lib/hoist --listen 0.0.0.0:4222 --auth /etc/hoist/auth
   hoist server --name n1 --listen 0.0.0.0:4222 --data /var/lib/hoist --auth /etc/hoist/auth \
     --cluster-listen 0.0.0.0:6222 --routes nats-route://n2:6222,nats-route://n3:6222 \
     --cluster-tls-cert n1.pem --cluster-tls-key n1-key.pem --cluster-tls-ca ca.pem \
     --cluster-user route --cluster-password-file /etc/hoist/route-password`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:4222", EnvVars: env("listen"), Usage: "client `ADDR` (host:port)"},
			&cli.StringFlag{Name: "data", Value: defaultDataDir("server"), EnvVars: env("data"), Usage: "JetStream store `DIR`"},
			&cli.StringFlag{Name: "name", Value: host, EnvVars: env("name"), Usage: "server name `N`, unique in a cluster"},
			&cli.StringFlag{Name: "monitor", EnvVars: env("monitor"), Usage: "HTTP monitoring `ADDR` (host:port)"},
			&cli.StringFlag{Name: "cluster-name", Value: "hoist", EnvVars: env("cluster-name"), Usage: "cluster name `N`, the same on every server of a cluster"},
			&cli.StringFlag{Name: "cluster-listen", EnvVars: env("cluster-listen"), Usage: "`ADDR` (host:port) other servers route to"},
			&cli.StringSliceFlag{Name: "routes", EnvVars: env("routes"), Usage: "routes `URL,...` to the other servers (nats-route://host:6222)"},
			&cli.StringFlag{Name: "auth", EnvVars: env("auth"), Usage: "JWT auth with the operator in `DIR` (see 'hoist auth init')"},
			&cli.BoolFlag{Name: "insecure", EnvVars: env("insecure"), Usage: "allow listening beyond loopback without client authentication, and routes beyond loopback without route TLS or auth"},
			&cli.StringFlag{Name: "user", EnvVars: env("user"), Usage: "require this client `USER` (with --password-file)"},
			&cli.StringFlag{Name: "password", EnvVars: env("password"), Usage: "client `PASSWORD`; on the command line it shows in ps, so prefer --password-file or $HOIST_SERVER_PASSWORD"},
			&cli.StringFlag{Name: "password-file", EnvVars: env("password-file"), Usage: "read the client password from `FILE`"},
			&cli.StringFlag{Name: "token", EnvVars: env("token"), Usage: "require this client `TOKEN`; on the command line it shows in ps, so prefer --token-file or $HOIST_SERVER_TOKEN"},
			&cli.StringFlag{Name: "token-file", EnvVars: env("token-file"), Usage: "read the client token from `FILE`"},
			&cli.StringFlag{Name: "tls-cert", EnvVars: env("tls-cert"), Usage: "TLS certificate `FILE` for clients"},
			&cli.StringFlag{Name: "tls-key", EnvVars: env("tls-key"), Usage: "TLS key `FILE`"},
			&cli.StringFlag{Name: "tls-ca", EnvVars: env("tls-ca"), Usage: "require client certificates signed by the CA in `FILE` (mutual TLS)"},
			&cli.StringFlag{Name: "cluster-user", EnvVars: env("cluster-user"), Usage: "routes authenticate as `USER` (with --cluster-password-file), the same on every server"},
			&cli.StringFlag{Name: "cluster-password", EnvVars: env("cluster-password"), Usage: "route `PASSWORD`; on the command line it shows in ps, so prefer --cluster-password-file or $HOIST_SERVER_CLUSTER_PASSWORD"},
			&cli.StringFlag{Name: "cluster-password-file", EnvVars: env("cluster-password-file"), Usage: "read the route password from `FILE`"},
			&cli.StringFlag{Name: "cluster-tls-cert", EnvVars: env("cluster-tls-cert"), Usage: "TLS certificate `FILE` this server presents on routes (for server and client auth)"},
			&cli.StringFlag{Name: "cluster-tls-key", EnvVars: env("cluster-tls-key"), Usage: "route TLS key `FILE`"},
			&cli.StringFlag{Name: "cluster-tls-ca", EnvVars: env("cluster-tls-ca"), Usage: "CA `FILE` that signed every server's route certificate (routes use mutual TLS)"},
			&cli.IntFlag{Name: "replicas", EnvVars: env("replicas"), DefaultText: "1, or 3 with --routes", Usage: "stream replicas `N`"},
			&cli.BoolFlag{Name: "sync-always", Value: true, EnvVars: env("sync-always"),
				Usage: "fsync every write before acking it, so an acked event survives a power loss (--sync-always=false: nats-server's 2-minute sync)"},
		},
		Action: runServer,
	}
}

// serverSettings is what the server command was asked to run.
type serverSettings struct {
	cfg      natsd.Config
	replicas int    // stream replication factor
	authDir  string // JWT auth with this auth directory's operator
}

func serverSettingsFrom(c *cli.Context) (serverSettings, error) {
	if _, err := args(c, 0, 0, "[options]"); err != nil {
		return serverSettings{}, err
	}
	var secrets [3]string
	for i, name := range []string{"password", "token", "cluster-password"} {
		v, err := secretFlag(c, name)
		if err != nil {
			return serverSettings{}, err
		}
		secrets[i] = v
	}
	password, token, clusterPassword := secrets[0], secrets[1], secrets[2]
	cfg := natsd.Config{
		Name:     c.String("name"),
		DataDir:  c.String("data"),
		Listen:   c.String("listen"),
		Monitor:  c.String("monitor"),
		User:     c.String("user"),
		Password: password,
		Token:    token,
		TLSCert:  c.String("tls-cert"),
		TLSKey:   c.String("tls-key"),
		TLSCA:    c.String("tls-ca"),

		SyncAlways: c.Bool("sync-always"),
	}
	if cfg.DataDir == "" {
		return serverSettings{}, usagef("--data is empty: the server needs a directory for its store")
	}
	for flag, addr := range map[string]string{"--listen": cfg.Listen, "--monitor": cfg.Monitor, "--cluster-listen": c.String("cluster-listen")} {
		if err := checkListen(flag, addr); err != nil {
			return serverSettings{}, err
		}
	}
	authDir := c.String("auth")
	switch {
	case c.IsSet("auth") && authDir == "":
		return serverSettings{}, usagef("--auth is empty: give the directory of 'hoist auth init'")
	case authDir != "" && (cfg.User != "" || cfg.Token != ""):
		return serverSettings{}, usagef("--auth excludes --user and --token: with JWT auth every client connects with issued credentials")
	// A client certificate that --tls-ca signed authenticates its holder,
	// though every holder may do anything: --auth gives roles.
	case authDir == "" && cfg.User == "" && cfg.Token == "" && cfg.TLSCA == "" && !c.Bool("insecure") && !isLoopback(cfg.Listen):
		return serverSettings{}, usagef("--listen %s accepts clients from other hosts, and nothing authenticates them: anyone who reaches it could publish deployments.\n"+
			"  Use --auth DIR (see 'hoist auth init'), --user with --password-file, --token-file, or --tls-ca for client certificates; or --insecure if the network is trusted", cfg.Listen)
	case cfg.User != "" && cfg.Token != "":
		return serverSettings{}, usagef("--user and --token exclude each other: pick one way to authenticate clients")
	case (cfg.User == "") != (cfg.Password == ""):
		return serverSettings{}, usagef("--user and --password (or --password-file) go together")
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return serverSettings{}, usagef("--tls-cert and --tls-key go together")
	case cfg.TLSCA != "" && cfg.TLSCert == "":
		return serverSettings{}, usagef("--tls-ca needs --tls-cert and --tls-key")
	}
	routes := c.StringSlice("routes")
	for _, r := range routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			return serverSettings{}, usagef("--routes: %q is not a route URL like nats-route://host:6222", r)
		}
	}
	clustered := len(routes) > 0 || c.String("cluster-listen") != ""
	if clustered {
		switch {
		case c.String("cluster-listen") == "":
			return serverSettings{}, usagef("--routes needs --cluster-listen ADDR, where the other servers reach this one (e.g. 0.0.0.0:6222)")
		case cfg.Name == "":
			return serverSettings{}, usagef("a clustered server needs --name")
		case c.String("cluster-name") == "":
			return serverSettings{}, usagef("a clustered server needs --cluster-name")
		}
		cfg.ClusterName, cfg.ClusterListen, cfg.Routes = c.String("cluster-name"), c.String("cluster-listen"), routes
	}
	if err := routeSecurity(c, &cfg, clustered, clusterPassword); err != nil {
		return serverSettings{}, err
	}
	replicas := c.Int("replicas")
	switch {
	case !c.IsSet("replicas") && len(routes) > 0:
		replicas = 3
	case !c.IsSet("replicas"):
		replicas = 1
	case replicas < 1 || replicas > 5:
		return serverSettings{}, usagef("--replicas %d: want 1-5", replicas)
	case replicas > 1 && !clustered:
		return serverSettings{}, usagef("--replicas %d needs a cluster (--cluster-listen and --routes)", replicas)
	}
	return serverSettings{cfg: cfg, replicas: replicas, authDir: authDir}, nil
}

// routeSecurity reads the routes' TLS and authentication flags into cfg.
// Client auth does not cover routes: a server that reaches an open
// --cluster-listen joins the cluster and holds a copy of every stream.
func routeSecurity(c *cli.Context, cfg *natsd.Config, clustered bool, password string) error {
	cfg.ClusterUser, cfg.ClusterPassword = c.String("cluster-user"), password
	cfg.ClusterTLSCert, cfg.ClusterTLSKey, cfg.ClusterTLSCA = c.String("cluster-tls-cert"), c.String("cluster-tls-key"), c.String("cluster-tls-ca")
	auth := cfg.ClusterUser != "" || cfg.ClusterPassword != ""
	mtls := cfg.ClusterTLSCert != "" || cfg.ClusterTLSKey != "" || cfg.ClusterTLSCA != ""
	switch {
	case !clustered && (auth || mtls):
		return usagef("--cluster-user, --cluster-password and --cluster-tls-* secure routes: they need --cluster-listen and --routes")
	case (cfg.ClusterUser == "") != (cfg.ClusterPassword == ""):
		return usagef("--cluster-user and --cluster-password (or --cluster-password-file) go together")
	case mtls && (cfg.ClusterTLSCert == "" || cfg.ClusterTLSKey == "" || cfg.ClusterTLSCA == ""):
		return usagef("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together: routes use mutual TLS, each server presenting its certificate and checking its peers' with the CA")
	case clustered && !auth && !mtls && !c.Bool("insecure") && !isLoopback(cfg.ClusterListen):
		return usagef("--cluster-listen %s accepts routes from other hosts, and nothing authenticates them: any nats-server that reaches it joins the cluster and reads every stream.\n"+
			"  Use --cluster-tls-cert/--cluster-tls-key/--cluster-tls-ca, or --cluster-user with --cluster-password-file, or both; or --insecure if the network is trusted", cfg.ClusterListen)
	}
	return nil
}

// isLoopback reports whether a listen address takes only local clients.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkListen(flag, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("%s %q: want host:port", flag, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return usagef("%s %q: the port must be 0-65535", flag, addr)
	}
	return nil
}

func runServer(c *cli.Context) error {
	set, err := serverSettingsFrom(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(set.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if set.authDir != "" {
		if set.cfg.Auth, err = serverAuth(set.authDir, set.cfg.DataDir); err != nil {
			return err
		}
	}
	set.cfg.Logger = log.With("src", "nats")
	srv, err := natsd.Start(set.cfg)
	if err != nil {
		return err
	}
	defer srv.Shutdown() // safe to call twice
	ctx := c.Context
	addr := serverURL(srv, set.cfg)
	clientTLS, routeSec := tlsMode(set.cfg)
	log.Info("nats server accepting connections; waiting for JetStream", "url", addr, "data", set.cfg.DataDir, "auth", authMode(set), "tls", clientTLS)
	if set.cfg.ClusterListen != "" {
		log.Info("routes", "listen", set.cfg.ClusterListen, "security", routeSec)
	}

	if err := waitUsable(ctx, srv, set, log); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped before it was ready")
			return nil
		}
		return err
	}
	fmt.Fprintf(c.App.Writer, "ready: %s\n", addr)
	log.Info("ready", "url", addr, "stream_replicas", set.replicas, "sync_always", set.cfg.SyncAlways)

	<-ctx.Done()
	log.Info("shutting down")
	srv.Shutdown()
	log.Info("stopped")
	return nil
}

// waitUsable returns once JetStream answers and hoist's streams exist. In
// a cluster both need a majority of the servers, so it keeps trying until
// ctx ends, saying what it waits for.
func waitUsable(ctx context.Context, srv *natsd.Server, set serverSettings, log *slog.Logger) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := srv.WaitJetStream(wctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("JetStream is not ready yet; a cluster needs a majority of its servers up", "err", err)
	}
	opts := []nats.Option{nats.InProcessServer(srv.NATS()), nats.Name("hoist server")}
	switch {
	case set.cfg.Auth != nil:
		opts = append(opts, nats.UserCredentials(set.cfg.Auth.ClientCreds))
	case set.cfg.User != "":
		opts = append(opts, nats.UserInfo(set.cfg.User, set.cfg.Password))
	case set.cfg.Token != "":
		opts = append(opts, nats.Token(set.cfg.Token))
	}
	// In process, the server offers TLS but does not require it, so its
	// own client needs neither its CA nor a client certificate. A tls://
	// URL (srv.ClientURL with TLS on) would make the client insist on TLS
	// and check the server's certificate against the system's CAs.
	nc, err := nats.Connect("nats://"+srv.Addr().String(), opts...)
	if err != nil {
		return fmt.Errorf("connect to the embedded server: %w", err)
	}
	defer nc.Close()
	return ensureStreams(ctx, srv, nc, set, log)
}

// tlsMode says how clients and routes use TLS, for the log.
func tlsMode(cfg natsd.Config) (clients, routes string) {
	clients, routes = "none", "none"
	switch {
	case cfg.TLSCA != "":
		clients = "mutual"
	case cfg.TLSCert != "":
		clients = "server"
	}
	switch {
	case cfg.ClusterTLSCA != "" && cfg.ClusterUser != "":
		routes = "mutual tls, user"
	case cfg.ClusterTLSCA != "":
		routes = "mutual tls"
	case cfg.ClusterUser != "":
		routes = "user"
	}
	return clients, routes
}

// authMode says how clients authenticate, for the log.
func authMode(set serverSettings) string {
	switch {
	case set.authDir != "":
		return "jwt (" + set.authDir + ")"
	case set.cfg.User != "":
		return "user"
	case set.cfg.Token != "":
		return "token"
	case set.cfg.TLSCA != "":
		return "client certificates"
	}
	return "none"
}

// ensureStreams creates or updates hoist's streams. The servers of a
// cluster often start at once, and concurrent creates or updates of one
// stream can go unanswered (the meta leader proposes the same assignment
// twice and answers one), which costs a request timeout. So in a cluster
// only the meta leader sets the streams up, and the others wait until the
// streams exist. A server that waited long (the leader may not be a hoist
// server) sets them up itself.
func ensureStreams(ctx context.Context, srv *natsd.Server, nc *nats.Conn, set serverSettings, log *slog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	clustered := set.cfg.ClusterListen != ""
	start, warned := time.Now(), time.Time{}
	for {
		pause := 200 * time.Millisecond
		leads := !clustered || srv.NATS().JetStreamIsLeader() || time.Since(start) > 15*time.Second
		if !leads && streamsExist(ctx, js) {
			log.Debug("the meta leader has set up hoist's streams")
			return nil
		}
		if leads {
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := store.Open(octx, nc, store.Options{Replicas: set.replicas, Logger: log})
			cancel()
			switch {
			case err == nil:
				return nil
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, store.ErrServerTooOld):
				return err
			case time.Since(warned) > 10*time.Second: // say it once in a while, not on every try
				log.Warn("cannot set up hoist's streams yet; retrying", "replicas", set.replicas, "err", err)
				warned = time.Now()
			}
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// streamsExist reports whether every hoist stream has been created.
func streamsExist(ctx context.Context, js jetstream.JetStream) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, name := range []string{events.EventsStream, events.ScoresStream, events.BackendsStream, events.ReportsStream} {
		if _, err := js.Stream(ctx, name); err != nil {
			return false
		}
	}
	return true
}

// serverURL is the URL clients on this host use.
func serverURL(srv *natsd.Server, cfg natsd.Config) string {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "nats"
	if cfg.TLSCert != "" {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, strconv.Itoa(srv.Addr().Port)))
}

// defaultDataDir is where a daemon keeps its data without --data:
// $XDG_DATA_HOME/hoist/NAME, ~/.local/share/hoist/NAME, or on Windows
// %LocalAppData%\hoist\NAME.
func defaultDataDir(name string) string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "hoist", name)
	}
	if runtime.GOOS == "windows" {
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "hoist", name)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "hoist", name)
	}
	return filepath.Join(os.TempDir(), "hoist", name)
}
