package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Setup is what an auth directory holds, by public key.
type Setup struct {
	Dir           string
	Operator      string
	SystemAccount string
	Account       string // the HOIST account
	SigningKey    string // signs HOIST users
	// Created lists the files Init wrote, relative to Dir; empty when it
	// found everything in place.
	Created []string
}

// keyring holds the seeds that sign: only where credentials are issued.
type keyring struct {
	operator, sys, account, signing nkeys.KeyPair
}

// Init sets up an auth directory: operator, SYS and HOIST accounts, the
// HOIST signing key, and the admin, sys and server credentials. It never
// overwrites anything: run again, it creates only what is missing, and
// refuses when what exists does not fit together.
func Init(dir string) (Setup, error) {
	set := Setup{Dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, keysDir), dirPerm); err != nil {
		return set, fmt.Errorf("init %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, accountsDir), dirPerm); err != nil {
		return set, fmt.Errorf("init %s: %w", dir, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, keysDir)} {
		if err := os.Chmod(d, dirPerm); err != nil {
			return set, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	var kr keyring
	for _, k := range []struct {
		file   string
		create func() (nkeys.KeyPair, error)
		kp     *nkeys.KeyPair
	}{
		{operatorSeed, nkeys.CreateOperator, &kr.operator},
		{sysSeed, nkeys.CreateAccount, &kr.sys},
		{accountSeed, nkeys.CreateAccount, &kr.account},
		{signingSeed, nkeys.CreateAccount, &kr.signing},
	} {
		kp, created, err := loadOrCreateKey(filepath.Join(dir, k.file), k.create)
		if err != nil {
			return set, fmt.Errorf("init %s: %w", dir, err)
		}
		*k.kp = kp
		if created {
			set.Created = append(set.Created, k.file)
		}
	}
	set.Operator, set.SystemAccount = publicKey(kr.operator), publicKey(kr.sys)
	set.Account, set.SigningKey = publicKey(kr.account), publicKey(kr.signing)

	steps := []func() (string, error){
		func() (string, error) { return initOperator(dir, kr) },
		func() (string, error) { return initAccount(dir, kr, kr.sys, sysAccountName) },
		func() (string, error) { return initAccount(dir, kr, kr.account, accountName) },
	}
	for _, step := range steps {
		file, err := step()
		if err != nil {
			return set, fmt.Errorf("init %s: %w", dir, err)
		}
		if file != "" {
			set.Created = append(set.Created, file)
		}
	}
	for _, c := range []struct {
		file string
		name string
		sys  bool
	}{
		{adminCreds, "admin", false},
		{serverCreds, "server", false},
		{SysCreds, "sys", true},
	} {
		created, err := initCreds(dir, kr, c.file, c.name, c.sys)
		if err != nil {
			return set, fmt.Errorf("init %s: %w", dir, err)
		}
		if created {
			set.Created = append(set.Created, c.file)
		}
	}
	return set, nil
}

// initOperator writes the operator JWT, self-signed, naming the system
// account, or checks the one there.
func initOperator(dir string, kr keyring) (string, error) {
	path := filepath.Join(dir, operatorFile)
	if b, err := os.ReadFile(path); err == nil {
		oc, err := jwt.DecodeOperatorClaims(string(b))
		switch {
		case err != nil:
			return "", fmt.Errorf("%s: %w", operatorFile, err)
		case oc.Subject != publicKey(kr.operator):
			return "", fmt.Errorf("%s is for operator %s, but %s holds %s: the directory mixes two setups", operatorFile, oc.Subject, operatorSeed, publicKey(kr.operator))
		case oc.SystemAccount != publicKey(kr.sys):
			return "", fmt.Errorf("%s names system account %s, but %s holds %s", operatorFile, oc.SystemAccount, sysSeed, publicKey(kr.sys))
		}
		return "", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	oc := jwt.NewOperatorClaims(publicKey(kr.operator))
	oc.Name = "hoist"
	oc.SystemAccount = publicKey(kr.sys)
	tok, err := oc.Encode(kr.operator)
	if err != nil {
		return "", fmt.Errorf("sign operator: %w", err)
	}
	return operatorFile, writeNew(path, []byte(tok), publicPerm)
}

// initAccount writes an account JWT signed by the operator, or checks the
// one there. An existing account JWT is kept as it is: it carries the
// revocations.
func initAccount(dir string, kr keyring, acct nkeys.KeyPair, name string) (string, error) {
	pub := publicKey(acct)
	rel := filepath.Join(accountsDir, pub+".jwt")
	path := filepath.Join(dir, rel)
	if b, err := os.ReadFile(path); err == nil {
		ac, err := jwt.DecodeAccountClaims(string(b))
		switch {
		case err != nil:
			return "", fmt.Errorf("%s: %w", rel, err)
		case ac.Issuer != publicKey(kr.operator):
			return "", fmt.Errorf("%s was signed by %s, not by this directory's operator", rel, ac.Issuer)
		case name == accountName && !ac.SigningKeys.Contains(publicKey(kr.signing)):
			return "", fmt.Errorf("%s does not list the signing key in %s", rel, signingSeed)
		}
		return "", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	ac := jwt.NewAccountClaims(pub)
	ac.Name = name
	if name == accountName {
		// JetStream is off for an account until its storage limits are
		// non-zero; NoLimit everywhere is what IsUnlimited checks.
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
			MemoryStorage: jwt.NoLimit,
			DiskStorage:   jwt.NoLimit,
			Streams:       jwt.NoLimit,
			Consumer:      jwt.NoLimit,
			MaxAckPending: jwt.NoLimit,
		}
		ac.SigningKeys.Add(publicKey(kr.signing))
	}
	tok, err := ac.Encode(kr.operator)
	if err != nil {
		return "", fmt.Errorf("sign account %s: %w", name, err)
	}
	return rel, writeNew(path, []byte(tok), publicPerm)
}

// initCreds issues one of the credentials init makes, unless its file is
// there already.
func initCreds(dir string, kr keyring, file, name string, sys bool) (bool, error) {
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	reg, err := loadRegistry(dir)
	if err != nil {
		return false, err
	}
	if u, ok := reg.live(name, time.Now()); ok {
		return false, fmt.Errorf("%s is missing, but %s (%s) is registered and not revoked: run 'hoist auth revoke %s', then init again", file, name, u.PublicKey, name)
	}
	var creds []byte
	var u User
	if sys {
		creds, u, err = signUser(kr.sys, nil, Role{Kind: KindSystem, Name: name}, sysAccountName, 0)
	} else {
		creds, u, err = signUser(kr.signing, kr.account, Role{Kind: KindAdmin, Name: name}, accountName, 0)
	}
	if err != nil {
		return false, err
	}
	// Registered first: a credential that exists can always be revoked.
	reg.Users = append(reg.Users, u)
	if err := reg.save(dir); err != nil {
		return false, err
	}
	return true, writeNew(path, creds, secretPerm)
}

// loadKeyring reads the signing seeds of an initialized directory.
func loadKeyring(dir string) (keyring, error) {
	var kr keyring
	if _, err := os.Stat(filepath.Join(dir, operatorFile)); errors.Is(err, fs.ErrNotExist) {
		return kr, fmt.Errorf("%w: %s has no %s (run 'hoist auth init --dir %s')", ErrNoAuthDir, dir, operatorFile, dir)
	}
	for _, k := range []struct {
		file string
		kp   *nkeys.KeyPair
	}{{operatorSeed, &kr.operator}, {sysSeed, &kr.sys}, {accountSeed, &kr.account}, {signingSeed, &kr.signing}} {
		kp, err := loadKey(filepath.Join(dir, k.file))
		if err != nil {
			return kr, fmt.Errorf("%w (issuing and revoking need the seeds in %s)", err, filepath.Join(dir, keysDir))
		}
		*k.kp = kp
	}
	return kr, nil
}
