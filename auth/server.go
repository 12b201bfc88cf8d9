package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// ServerSettings is what a nats-server needs to trust this directory's
// operator. It holds no seeds.
type ServerSettings struct {
	Operators     []*jwt.OperatorClaims
	SystemAccount string
	// Resolver is a full directory resolver, preloaded with the accounts:
	// account updates pushed at run time (revocations) apply at once and
	// are kept in its directory across restarts.
	Resolver server.AccountResolver
	// Creds is the server's own client credential (server.creds), for
	// setting up hoist's streams.
	Creds string
}

// ServerOptions reads what a server needs from an auth directory
// (operator.jwt, accounts/*.jwt and server.creds, never the seeds) and
// opens a full directory resolver in resolverDir, preloaded with the
// accounts. A preloaded account never replaces a newer one the resolver
// already holds, so a revocation pushed to a running server survives its
// restart even when this directory is an older copy. A resolver serves one
// server: call ServerOptions for each start.
func ServerOptions(dir, resolverDir string) (ServerSettings, error) {
	var s ServerSettings
	op, err := server.ReadOperatorJWT(filepath.Join(dir, operatorFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("%w: %s has no %s (run 'hoist auth init --dir %s')", ErrNoAuthDir, dir, operatorFile, dir)
	}
	if err != nil {
		return s, fmt.Errorf("auth %s: %w", dir, err)
	}
	if op.SystemAccount == "" {
		return s, fmt.Errorf("auth %s: %s names no system account", dir, operatorFile)
	}
	accounts, err := readAccounts(dir)
	if err != nil {
		return s, err
	}
	if _, ok := accounts[op.SystemAccount]; !ok {
		return s, fmt.Errorf("auth %s: the system account %s has no JWT in %s", dir, op.SystemAccount, accountsDir)
	}
	creds := filepath.Join(dir, serverCreds)
	if _, err := os.Stat(creds); err != nil {
		return s, fmt.Errorf("auth %s: the server's own credential: %w", dir, err)
	}
	if err := os.MkdirAll(resolverDir, dirPerm); err != nil {
		return s, fmt.Errorf("account resolver: %w", err)
	}
	res, err := server.NewDirAccResolver(resolverDir, 0, 0, server.NoDelete)
	if err != nil {
		return s, fmt.Errorf("account resolver in %s: %w", resolverDir, err)
	}
	for pub, tok := range accounts {
		if err := res.Store(pub, tok); err != nil {
			res.Close()
			return s, fmt.Errorf("account resolver: preload %s: %w", pub, err)
		}
	}
	return ServerSettings{Operators: []*jwt.OperatorClaims{op}, SystemAccount: op.SystemAccount, Resolver: res, Creds: creds}, nil
}

// readAccounts returns the account JWTs of the directory by public key,
// checked to be signed by its operator's key.
func readAccounts(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, accountsDir, "*.jwt"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("auth %s: %w", dir, err)
		}
		tok := strings.TrimSpace(string(b))
		ac, err := jwt.DecodeAccountClaims(tok)
		if err != nil {
			return nil, fmt.Errorf("auth %s: %s: %w", dir, f, err)
		}
		out[ac.Subject] = tok
	}
	return out, nil
}

// NATSConfigOptions places the state of an external nats-server.
type NATSConfigOptions struct {
	ResolverDir string // where the full resolver keeps account JWTs
	StoreDir    string // JetStream store
}

// NATSConfig renders the part of a nats-server configuration that trusts
// this directory's operator, with a full resolver preloaded with its
// accounts and JetStream on. The JWTs are inlined, so the file stands
// alone.
func NATSConfig(dir string, o NATSConfigOptions) (string, error) {
	op, err := server.ReadOperatorJWT(filepath.Join(dir, operatorFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s has no %s (run 'hoist auth init --dir %s')", ErrNoAuthDir, dir, operatorFile, dir)
	}
	if err != nil {
		return "", fmt.Errorf("auth %s: %w", dir, err)
	}
	opJWT, err := os.ReadFile(filepath.Join(dir, operatorFile))
	if err != nil {
		return "", err
	}
	accounts, err := readAccounts(dir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# hoist: decentralized JWT auth for operator %s (from 'hoist auth nats-config')\n", op.Subject)
	fmt.Fprintf(&b, "operator: %q\n", strings.TrimSpace(string(opJWT)))
	fmt.Fprintf(&b, "system_account: %s\n\n", op.SystemAccount)
	b.WriteString("# The full resolver takes account updates at run time ('hoist auth revoke'\n")
	b.WriteString("# pushes them) and keeps them in its directory; servers of a cluster share them.\n")
	fmt.Fprintf(&b, "resolver: {\n  type: full\n  dir: %q\n  allow_delete: false\n  interval: \"2m\"\n  timeout: \"1.9s\"\n}\n\n", o.ResolverDir)
	b.WriteString("# Loaded at start; a newer JWT already in the resolver directory wins.\n")
	b.WriteString("resolver_preload: {\n")
	keys := make([]string, 0, len(accounts))
	for k := range accounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := "account"
		if ac, err := jwt.DecodeAccountClaims(accounts[k]); err == nil {
			name = ac.Name
		}
		fmt.Fprintf(&b, "  # %s\n  %s: %q\n", name, k, accounts[k])
	}
	b.WriteString("}\n\n")
	b.WriteString("# JetStream for the HOIST account, whose JWT enables it without limits.\n")
	fmt.Fprintf(&b, "jetstream: {\n  store_dir: %q\n}\n", o.StoreDir)
	return b.String(), nil
}
