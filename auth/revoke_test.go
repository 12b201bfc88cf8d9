package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/internal/natstest"
)

// pushWithSys pushes an account JWT as the system user.
func pushWithSys(t *testing.T, url, dir, accountJWT string) {
	t.Helper()
	sys, err := nats.Connect(url, nats.UserCredentials(filepath.Join(dir, SysCreds)))
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := Push(ctx, sys, accountJWT); err != nil {
		t.Fatal(err)
	}
}

// revokedOut waits until a connection is closed or, reconnecting, keeps
// being refused, and checks a new connection is refused.
func revokedOut(t *testing.T, cl *client, url, creds string) {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, func() error {
		if cl.nc.IsClosed() || (!cl.nc.IsConnected() && isAuthErr(cl.nc.LastError())) {
			return nil
		}
		return fmt.Errorf("the revoked connection is %s (last error %v)", cl.nc.Status(), cl.nc.LastError())
	})
	if _, err := cl.nc.Request("$JS.API.INFO", nil, time.Second); err == nil {
		t.Error("a request on the revoked connection got an answer")
	}
	c, err := tryConnect(url, creds, nats.MaxReconnects(0), nats.NoReconnect())
	if err == nil {
		c.nc.Close()
		t.Fatal("a revoked credential connected again")
	}
	if !isAuthErr(err) {
		t.Fatalf("a revoked credential's connect failed with %v, not an authorization error", err)
	}
}

func isAuthErr(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthRevoked)
}

// Issue and revoke on a running server: the server learns of neither from
// a restart. The issued user connects; once the revoked account JWT is
// pushed, its live connection is closed and it cannot connect again, while
// others stay connected.
func TestIssueRevokeWithoutRestart(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	waitJetStream(t, srv)
	url := srv.ClientURL()

	creds := issue(t, dir, Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}})
	other := connect(t, url, issue(t, dir, Role{Kind: KindReader, Name: "bob"}))
	cl := connect(t, url, creds)
	if _, err := cl.request("$JS.API.INFO", nil); err != nil {
		t.Fatal(err)
	}

	tok, err := Revoke(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pushWithSys(t, url, dir, tok)
	revokedOut(t, cl, url, creds)
	if _, err := other.request("$JS.API.INFO", nil); err != nil {
		t.Fatalf("bob, not revoked: %v", err)
	}

	users, err := Users(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if live := u.Live(time.Now()); (u.Name == "alice") == live {
			t.Errorf("%s: live %v after revoking alice", u.Name, live)
		}
	}

	// Revoking again changes nothing and hands back the same JWT to push;
	// the name can be issued anew and the new credential works.
	again, err := Revoke(dir, "alice")
	if err != nil || again != tok {
		t.Fatalf("revoke again: %v (same JWT: %v)", err, again == tok)
	}
	if _, err := Revoke(dir, "nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("revoke an unknown name: %v", err)
	}
	connect(t, url, issue(t, dir, Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}}))
	if _, _, err := Issue(dir, Role{Kind: KindReader, Name: "bob"}, 0); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("issue a live name again: %v", err)
	}
}

// A revocation survives a restart on the same resolver directory, even
// when the auth directory the server preloads from is an older copy.
func TestRevocationSurvivesRestart(t *testing.T) {
	dir := initDir(t)
	stale := filepath.Join(t.TempDir(), "stale")
	creds := issue(t, dir, Role{Kind: KindReader, Name: "carol"})
	if err := os.CopyFS(stale, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	resolver := filepath.Join(t.TempDir(), "jwt")
	start := func(authDir string) *server.Server {
		set, err := ServerOptions(authDir, resolver)
		if err != nil {
			t.Fatal(err)
		}
		return startServerWith(t, set)
	}
	first := start(dir)
	url := first.ClientURL()
	tok, err := Revoke(dir, "carol")
	if err != nil {
		t.Fatal(err)
	}
	pushWithSys(t, url, dir, tok)
	first.Shutdown() // safe again at cleanup
	first.WaitForShutdown()

	url = start(stale).ClientURL()
	if c, err := tryConnect(url, creds, nats.NoReconnect()); err == nil {
		c.nc.Close()
		t.Fatal("carol connected after a restart from a stale auth directory")
	} else if !isAuthErr(err) {
		t.Fatalf("carol: %v", err)
	}
}

// Expired credentials are refused.
func TestExpiredCredentialRefused(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir, serverOpts{})
	b, u, err := Issue(dir, Role{Kind: KindReader, Name: "temp"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if u.Expires.IsZero() {
		t.Fatal("no expiry in the registry")
	}
	path := filepath.Join(t.TempDir(), "temp.creds")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := tryConnect(srv.ClientURL(), path, nats.NoReconnect())
	if err != nil {
		t.Fatalf("before it expires: %v", err)
	}
	c.nc.Close()
	natstest.Eventually(t, 10*time.Second, func() error {
		c, err := tryConnect(srv.ClientURL(), path, nats.NoReconnect())
		if err == nil {
			c.nc.Close()
			return errors.New("still accepted")
		}
		// nats.go reports this one as "user authentication expired", which
		// is not its ErrAuthExpired sentinel's text.
		t.Logf("after it expired: %v", err)
		return nil
	})
}
