package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events/natsd"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/internal/tlstest"
)

// A 'hoist server' with a private CA's certificate starts (its own client
// does not need the CA), and clients that trust the CA deploy through it.
func TestServerPrivateCA(t *testing.T) {
	ca := tlstest.NewCA(t, "hoist")
	cert := ca.Server(t, "server")
	p := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--name", "t1",
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile)
	url := p.wait(t, 30*time.Second)
	if !strings.HasPrefix(url, "tls://127.0.0.1:") {
		t.Fatalf("ready URL %q", url)
	}
	mustRun(t, 0, hoistAt(url, "--nats-ca", ca.CertFile, "deploy", "acme.prod.web", "--image", "web:1"))
	r := mustRun(t, 1, hoistAt(url, "scopes"))
	want := "hoist: connect to NATS at " + url + ": tls: the server's certificate is not signed by a CA this host trusts: give its CA with --nats-ca (x509: certificate signed by unknown authority)\n"
	if r.stderr != want {
		t.Errorf("without --nats-ca:\n%s\nwant\n%s", r.stderr, want)
	}
}

// --tls-ca makes 'hoist server' require client certificates the CA signed.
// They authenticate clients, so it may listen beyond loopback without
// --insecure.
func TestServerMutualTLS(t *testing.T) {
	ca, foreign := tlstest.NewCA(t, "hoist"), tlstest.NewCA(t, "foreign")
	cert := ca.Server(t, "server")
	p := startServerCmd(t, "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--name", "t1",
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--tls-ca", ca.CertFile)
	url := p.wait(t, 30*time.Second)
	if log := p.log.String(); !strings.Contains(log, "tls=mutual") || !strings.Contains(log, `auth="client certificates"`) {
		t.Errorf("the log does not say clients need certificates:\n%s", log)
	}
	good, stranger := ca.Client(t, "ci"), foreign.Client(t, "mallory")

	refused := []struct {
		name  string
		flags []string
		want  string
	}{
		{"no client certificate", []string{"--nats-ca", ca.CertFile},
			"hoist: connect to NATS at " + url + ": tls: the server requires a client certificate (mutual TLS) and none was given: pass --nats-cert and --nats-key ("},
		{"a foreign CA's certificate", []string{"--nats-ca", ca.CertFile, "--nats-cert", stranger.CertFile, "--nats-key", stranger.KeyFile},
			"hoist: connect to NATS at " + url + ": tls: the server requires a client certificate signed by its CA, and --nats-cert " + stranger.CertFile + " is not ("},
		{"the server's CA unknown", []string{"--nats-ca", foreign.CertFile, "--nats-cert", good.CertFile, "--nats-key", good.KeyFile},
			"hoist: connect to NATS at " + url + ": tls: the server's certificate is not signed by --nats-ca " + foreign.CertFile + " (x509: certificate signed by unknown authority)\n"},
	}
	for _, c := range refused {
		r := hoistAt(url, append(c.flags, "deploy", "acme.prod.web", "--image", "web:1")...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, c.want) {
			t.Errorf("%s: want exit 1 and\n%s…\ngot %s", c.name, c.want, r)
		}
	}

	// The variables work as the flags do.
	t.Setenv("HOIST_NATS_CA", ca.CertFile)
	t.Setenv("HOIST_NATS_CERT", good.CertFile)
	t.Setenv("HOIST_NATS_KEY", good.KeyFile)
	mustRun(t, 0, hoistAt(url, "deploy", "acme.prod.web", "--image", "web:1"))
	if r := mustRun(t, 0, hoistAt(url, "log", "acme.prod.web", "--json")); len(decodeJSON[[]map[string]any](t, r.stdout)) != 1 {
		t.Fatalf("log %s", r.stdout)
	}
}

// secretFile writes a secret with the newline an editor leaves.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Passwords and tokens come from files, without their trailing newline,
// on the server and the client side alike.
func TestSecretFiles(t *testing.T) {
	pw, token := secretFile(t, "s3cret"), secretFile(t, "t0ken")
	p := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--name", "t1", "--user", "ci", "--password-file", pw)
	url := p.wait(t, 30*time.Second)
	mustRun(t, 1, hoistAt(url, "--nats-user", "ci", "scopes"))
	mustRun(t, 0, hoistAt(url, "--nats-user", "ci", "--nats-password-file", pw, "scopes"))
	mustRun(t, 0, hoistAt(url, "--nats-user", "ci", "--nats-password", "s3cret", "scopes"))
	t.Run("HOIST_NATS_PASSWORD_FILE", func(t *testing.T) {
		t.Setenv("HOIST_NATS_PASSWORD_FILE", pw)
		mustRun(t, 0, hoistAt(url, "--nats-user", "ci", "scopes"))
	})

	p2 := startServerCmd(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--name", "t2", "--token-file", token)
	url2 := p2.wait(t, 30*time.Second)
	mustRun(t, 1, hoistAt(url2, "scopes"))
	mustRun(t, 0, hoistAt(url2, "--nats-token-file", token, "scopes"))
}

// A secret file that is missing, empty, or given alongside the secret is a
// usage error, on the server and the client side.
func TestSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing, empty := filepath.Join(dir, "missing"), filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := secretFile(t, "s3cret")
	data := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"server", "--data", data, "--user", "u", "--password-file", missing}, "hoist: --password-file: open " + missing + ": no such file or directory\n"},
		{[]string{"server", "--data", data, "--user", "u", "--password-file", empty}, "hoist: --password-file " + empty + " is empty\n"},
		{[]string{"server", "--data", data, "--user", "u", "--password-file", dir}, "hoist: --password-file: read " + dir + ": is a directory\n"},
		{[]string{"server", "--data", data, "--user", "u", "--password-file", ""}, "hoist: --password-file is empty: give the file that holds the secret\n"},
		{[]string{"server", "--data", data, "--user", "u", "--password", "p", "--password-file", good}, "hoist: --password and --password-file exclude each other: give the secret one way\n"},
		{[]string{"server", "--data", data, "--token-file", missing}, "hoist: --token-file: open " + missing + ": no such file or directory\n"},
		{[]string{"server", "--data", data, "--cluster-listen", "127.0.0.1:0", "--cluster-user", "r", "--cluster-password-file", empty}, "hoist: --cluster-password-file " + empty + " is empty\n"},
		{[]string{"--nats-password-file", missing, "scopes"}, "hoist: --nats-password-file: open " + missing + ": no such file or directory\n"},
		{[]string{"--nats-token-file", empty, "scopes"}, "hoist: --nats-token-file " + empty + " is empty\n"},
		{[]string{"--nats-token", "t", "--nats-token-file", good, "scopes"}, "hoist: --nats-token and --nats-token-file exclude each other: give the secret one way\n"},
	}
	for _, c := range cases {
		if r := hoist(c.args...); r.code != 2 || r.stderr != c.want {
			t.Errorf("hoist %s: want exit 2 and\n%s got %s", strings.Join(c.args, " "), c.want, r)
		}
	}
}

// The help of every secret flag says that argv shows in ps.
func TestSecretFlagsHelp(t *testing.T) {
	server := mustRun(t, 0, hoist("server", "--help")).stdout
	global := mustRun(t, 0, hoist("--help")).stdout
	for _, c := range []struct{ help, flag string }{
		{server, "--password"}, {server, "--token"}, {server, "--cluster-password"},
		{global, "--nats-password"}, {global, "--nats-token"},
	} {
		var line string
		for l := range strings.Lines(c.help) {
			if strings.HasPrefix(strings.TrimSpace(l), c.flag+" ") {
				line = l
			}
		}
		if !strings.Contains(line, "shows in ps") || !strings.Contains(line, c.flag+"-file") {
			t.Errorf("help of %s: %q", c.flag, line)
		}
	}
}

// Three 'hoist server's with route TLS and a route password form a
// cluster; a server without the route credentials, as a stock nats-server
// would be, does not join and serves no stream.
func TestServerClusterRouteSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster takes several seconds to elect leaders")
	}
	ca := tlstest.NewCA(t, "hoist")
	pw := secretFile(t, "route-s3cret")
	ports := natstest.FreePorts(t, 3)
	procs := make([]*serverProc, 3)
	for i := range procs {
		var routes []string
		for j := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[j]))
			}
		}
		name := fmt.Sprintf("n%d", i+1)
		cert := ca.Server(t, name)
		procs[i] = startServerCmd(t, "--name", name, "--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[i]), "--routes", strings.Join(routes, ","),
			"--cluster-tls-cert", cert.CertFile, "--cluster-tls-key", cert.KeyFile, "--cluster-tls-ca", ca.CertFile,
			"--cluster-user", "route", "--cluster-password-file", pw)
	}
	urls := make([]string, 3)
	for i, p := range procs {
		urls[i] = p.wait(t, 60*time.Second)
	}
	if !strings.Contains(procs[0].log.String(), `security="mutual tls, user"`) {
		t.Errorf("the log does not say how routes are secured:\n%s", procs[0].log.String())
	}
	mustRun(t, 0, hoistAt(strings.Join(urls, ","), "deploy", "acme.prod.web", "--image", "web:1"))

	var log natstest.SyncBuffer
	before := len(procs[0].log.String())
	rogue, err := natsd.Start(natsd.Config{
		Name: "rogue", DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		ClusterName: "hoist", ClusterListen: "127.0.0.1:0", Routes: []string{fmt.Sprintf("nats-route://127.0.0.1:%d", ports[0])},
		Logger: slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Shutdown()
	natstest.Eventually(t, 10*time.Second, func() error {
		refused := strings.Contains(procs[0].log.String()[before:], "route handshake error") || strings.Contains(log.String(), "level=ERROR")
		if refused || rogue.NATS().NumRoutes() > 0 {
			return nil
		}
		return errors.New("the rogue has not tried its route yet")
	})
	if n := rogue.NATS().NumRoutes(); n != 0 {
		t.Fatalf("the rogue has %d routes", n)
	}
	if r := hoistAt(rogue.ClientURL(), "log", "acme.prod.web", "--json"); r.code == 0 {
		t.Fatalf("a client of the rogue read the log: %s", r)
	}
}
