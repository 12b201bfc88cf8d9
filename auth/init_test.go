package auth

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/hoist-dev/hoist/events/store"
)

func TestInitIsIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	first, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{operatorSeed, sysSeed, accountSeed, signingSeed, operatorFile,
		filepath.Join(accountsDir, first.SystemAccount+".jwt"), filepath.Join(accountsDir, first.Account+".jwt"),
		adminCreds, serverCreds, SysCreds}
	if !slices.Equal(first.Created, want) {
		t.Fatalf("created %q\nwant %q", first.Created, want)
	}
	snapshot := func() map[string][]byte {
		m := map[string][]byte{}
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				m[p], _ = os.ReadFile(p)
			}
			return nil
		})
		return m
	}
	before := snapshot()
	second, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Created) != 0 || second.Operator != first.Operator || second.Account != first.Account {
		t.Fatalf("second init: %+v", second)
	}
	after := snapshot()
	if len(after) != len(before) {
		t.Fatalf("files before %d, after %d", len(before), len(after))
	}
	for p, b := range before {
		if !bytes.Equal(after[p], b) {
			t.Errorf("%s changed", p)
		}
	}

	if runtime.GOOS != "windows" {
		for p := range after {
			fi, _ := os.Stat(p)
			isSecret := strings.HasSuffix(p, ".nk") || strings.HasSuffix(p, ".creds") || strings.HasSuffix(p, registryFile)
			if isSecret && fi.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v, want 0600", p, fi.Mode().Perm())
			}
		}
		for _, d := range []string{dir, filepath.Join(dir, keysDir)} {
			if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
				t.Errorf("%s is %v, want 0700", d, fi.Mode().Perm())
			}
		}
	}

	// A lost creds file is issued again only after its old key is revoked.
	if err := os.Remove(filepath.Join(dir, adminCreds)); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir); err == nil || !strings.Contains(err.Error(), "hoist auth revoke admin") {
		t.Fatalf("init with admin.creds lost: %v", err)
	}
	if _, err := Revoke(dir, "admin"); err != nil {
		t.Fatal(err)
	}
	third, err := Init(dir)
	if err != nil || !slices.Equal(third.Created, []string{adminCreds}) {
		t.Fatalf("init after revoking admin: %+v %v", third.Created, err)
	}

	// The HOIST account has JetStream without limits and the signing key.
	b, _ := os.ReadFile(filepath.Join(dir, accountsDir, first.Account+".jwt"))
	ac, err := jwt.DecodeAccountClaims(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !ac.Limits.IsJSEnabled() || !ac.Limits.JetStreamLimits.IsUnlimited() || !ac.SigningKeys.Contains(first.SigningKey) || ac.Name != "HOIST" {
		t.Errorf("HOIST account: %+v", ac)
	}
}

func TestInitRefusesMixedDirectories(t *testing.T) {
	a, b := initDir(t), initDir(t)
	// b's operator seed with a's operator JWT.
	op, _ := os.ReadFile(filepath.Join(a, operatorFile))
	if err := os.WriteFile(filepath.Join(b, operatorFile), op, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(b); err == nil || !strings.Contains(err.Error(), "mixes two setups") {
		t.Fatalf("init a mixed directory: %v", err)
	}
}

func TestIssuedNameIsTheClientsIdentity(t *testing.T) {
	dir := initDir(t)
	creds := issue(t, dir, Role{Kind: KindAgent, Name: "agent_7", Node: "node-7", Scopes: []string{"acme.prod.web"}})
	if name, err := store.CredsName(creds); err != nil || name != "agent_7" {
		t.Fatalf("identity: %q %v", name, err)
	}
	if name, err := store.CredsName(filepath.Join(dir, adminCreds)); err != nil || name != "admin" {
		t.Fatalf("admin identity: %q %v", name, err)
	}
	if _, err := store.CredsName(filepath.Join(dir, "nope.creds")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, _, err := Issue(t.TempDir(), Role{Kind: KindReader, Name: "r"}, 0); !errors.Is(err, ErrNoAuthDir) {
		t.Fatalf("issue from an empty directory: %v", err)
	}
}

// The nats-config output runs a plain nats-server: it trusts the operator,
// serves JetStream to the HOIST account and takes issued credentials and
// pushed revocations.
func TestNATSConfigRunsAServer(t *testing.T) {
	dir := initDir(t)
	state := t.TempDir()
	cfg, err := NATSConfig(dir, NATSConfigOptions{ResolverDir: filepath.Join(state, "jwt"), StoreDir: filepath.Join(state, "js")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, "jwt"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(state, "nats.conf")
	if err := os.WriteFile(path, []byte(cfg+"\nhost: 127.0.0.1\nport: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	waitJetStream(t, s)
	createStreams(t, s.ClientURL(), dir, 1)
	creds := issue(t, dir, Role{Kind: KindDeployer, Name: "alice", Scopes: []string{"acme.prod.*"}})
	cl := connect(t, s.ClientURL(), creds)
	cl.run(t, pub("hoist.scope.acme.prod.web.deployed.alice", true))
	cl.run(t, pub("hoist.scope.acme.staging.web.deployed.alice", false))
	tok, err := Revoke(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pushWithSys(t, s.ClientURL(), dir, tok)
	revokedOut(t, cl, s.ClientURL(), creds)
}
