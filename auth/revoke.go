package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ErrUnknownUser says no credential of that name was ever issued.
var ErrUnknownUser = errors.New("no such credential")

// claimsUpdateSubject is where a server with a full resolver takes account
// JWT updates, from a system account user.
const claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"

// Revoke revokes every credential called name: their public keys join the
// revocations of their account's JWT, which the operator signs again. It
// writes the account JWT to the directory and returns it, for Push. A
// name already revoked changes nothing, and its account JWT is returned
// again so that a failed push can be retried.
func Revoke(dir, name string) (string, error) {
	kr, err := loadKeyring(dir)
	if err != nil {
		return "", err
	}
	reg, err := loadRegistry(dir)
	if err != nil {
		return "", err
	}
	var keys []string
	acc := ""
	for _, u := range reg.Users {
		if u.Name != name {
			continue
		}
		acc = u.Account
		if u.Revoked.IsZero() {
			keys = append(keys, u.PublicKey)
		}
	}
	if acc == "" {
		return "", fmt.Errorf("revoke %s: %w ('hoist auth ls' lists them)", name, ErrUnknownUser)
	}
	accPub := publicKey(kr.account)
	if acc == sysAccountName {
		accPub = publicKey(kr.sys)
	}
	path := filepath.Join(dir, accountsDir, accPub+".jwt")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("revoke %s: %w", name, err)
	}
	if len(keys) == 0 {
		return string(b), nil
	}
	ac, err := jwt.DecodeAccountClaims(string(b))
	if err != nil {
		return "", fmt.Errorf("revoke %s: account %s: %w", name, acc, err)
	}
	now := time.Now()
	for _, k := range keys {
		// Revokes every JWT of this key issued up to now (whole seconds,
		// like the JWT's issue time).
		ac.RevokeAt(k, now)
	}
	tok, err := ac.Encode(kr.operator)
	if err != nil {
		return "", fmt.Errorf("revoke %s: sign account %s: %w", name, acc, err)
	}
	if err := replace(path, []byte(tok), publicPerm); err != nil {
		return "", fmt.Errorf("revoke %s: %w", name, err)
	}
	for i, u := range reg.Users {
		if u.Name == name && u.Revoked.IsZero() {
			reg.Users[i].Revoked = now.UTC().Truncate(time.Second)
		}
	}
	if err := reg.save(dir); err != nil {
		return "", fmt.Errorf("revoke %s: %w", name, err)
	}
	return tok, nil
}

// UpdateError is a server's refusal of an account JWT.
type UpdateError struct {
	Account     string
	Description string
}

func (e *UpdateError) Error() string {
	return fmt.Sprintf("server refused the update of account %s: %s", e.Account, e.Description)
}

// Push sends an account JWT to the servers of nc's cluster, which must be
// connected as the system account's user (sys.creds). Servers with a full
// resolver apply it at once: a revoked user's connections are closed. The
// first server's answer is checked; the others learn it from each other.
func Push(ctx context.Context, nc *nats.Conn, accountJWT string) error {
	msg, err := nc.RequestWithContext(ctx, claimsUpdateSubject, []byte(accountJWT))
	if err != nil {
		return fmt.Errorf("push account JWT: %w", err)
	}
	var resp server.ServerAPIClaimUpdateResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("push account JWT: the reply %q is not a claims update response: %w", msg.Data, err)
	}
	if resp.Error != nil {
		return &UpdateError{Account: resp.Error.Account, Description: resp.Error.Description}
	}
	if resp.Data == nil {
		return fmt.Errorf("push account JWT: empty reply %q", msg.Data)
	}
	return nil
}
