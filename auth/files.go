package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/nats-io/nkeys"

	"github.com/hoist-dev/hoist/internal/atomicfile"
)

// Files of an auth directory, relative to it.
const (
	operatorFile   = "operator.jwt"
	accountsDir    = "accounts"
	keysDir        = "keys"
	registryFile   = "users.json"
	adminCreds     = "admin.creds"
	SysCreds       = "sys.creds"
	serverCreds    = "server.creds"
	operatorSeed   = "keys/operator.nk"
	sysSeed        = "keys/sys-account.nk"
	accountSeed    = "keys/hoist-account.nk"
	signingSeed    = "keys/hoist-signing.nk"
	secretPerm     = 0o600
	dirPerm        = 0o700
	publicPerm     = 0o644
	accountName    = "HOIST"
	sysAccountName = "SYS"
)

// ErrNoAuthDir says a directory holds no hoist auth setup.
var ErrNoAuthDir = errors.New("not a hoist auth directory")

// writeNew writes a file that must not exist yet, atomically, so that an
// existing key is never overwritten, even by a concurrent init.
func writeNew(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteNew(path, data, perm, dirPerm)
}

// replace atomically replaces a file that may exist (account JWTs, the
// registry).
func replace(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}

// loadOrCreateKey reads a seed, or creates one with create when the file
// does not exist. created says which.
func loadOrCreateKey(path string, create func() (nkeys.KeyPair, error)) (kp nkeys.KeyPair, created bool, err error) {
	kp, err = loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return kp, false, err
	}
	kp, err = create()
	if err != nil {
		return nil, false, fmt.Errorf("create key %s: %w", path, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, false, err
	}
	if err := writeNew(path, append(seed, '\n'), secretPerm); err != nil {
		return nil, false, err
	}
	return kp, true, nil
}

func loadKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return kp, nil
}

func publicKey(kp nkeys.KeyPair) string {
	pub, _ := kp.PublicKey() // cannot fail for a parsed or created key
	return pub
}
