package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// ErrNameTaken says a name already has live credentials.
var ErrNameTaken = errors.New("name has live credentials")

// Issue signs a user JWT for the role with the HOIST account's signing key
// and returns the creds file (JWT and seed) and its registry entry. The
// user's name is the role's name, and expires (0: never) bounds its life.
// A name is issued again only once its earlier credentials are revoked or
// expired, because the name is the actor of its events.
func Issue(dir string, r Role, expires time.Duration) ([]byte, User, error) {
	r, err := r.Validate()
	if err != nil {
		return nil, User{}, err
	}
	if expires < 0 {
		return nil, User{}, invalidf("expiry %s is negative", expires)
	}
	kr, err := loadKeyring(dir)
	if err != nil {
		return nil, User{}, err
	}
	reg, err := loadRegistry(dir)
	if err != nil {
		return nil, User{}, err
	}
	if u, ok := reg.live(r.Name, time.Now()); ok {
		return nil, User{}, fmt.Errorf("issue %s: %w: %s %s was issued %s; revoke it first ('hoist auth revoke %s') or pick another name",
			r.Name, ErrNameTaken, u.Kind, u.Name, u.Issued.Format(time.RFC3339), u.Name)
	}
	creds, u, err := signUser(kr.signing, kr.account, r, accountName, expires)
	if err != nil {
		return nil, User{}, err
	}
	reg.Users = append(reg.Users, u)
	if err := reg.save(dir); err != nil {
		return nil, User{}, fmt.Errorf("issue %s: %w", r.Name, err)
	}
	return creds, u, nil
}

// signUser creates a user key and signs its JWT with signer. account is
// the account's key when signer is one of its signing keys (nil when the
// account key signs itself). The system user has no permission limits.
func signUser(signer, account nkeys.KeyPair, r Role, accName string, expires time.Duration) ([]byte, User, error) {
	ukp, err := nkeys.CreateUser()
	if err != nil {
		return nil, User{}, fmt.Errorf("create user key: %w", err)
	}
	upub := publicKey(ukp)
	uc := jwt.NewUserClaims(upub)
	uc.Name = r.Name
	uc.Tags.Add("hoist-role:" + string(r.Kind))
	if account != nil {
		uc.IssuerAccount = publicKey(account)
	}
	if r.Kind != KindSystem {
		p, err := Permissions(r)
		if err != nil {
			return nil, User{}, err
		}
		uc.Permissions = p
	}
	now := time.Now()
	if expires > 0 {
		uc.Expires = now.Add(expires).Unix()
	}
	tok, err := uc.Encode(signer)
	if err != nil {
		return nil, User{}, fmt.Errorf("sign user %s: %w", r.Name, err)
	}
	seed, err := ukp.Seed()
	if err != nil {
		return nil, User{}, err
	}
	creds, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		return nil, User{}, err
	}
	u := User{Name: r.Name, Kind: r.Kind, Scopes: r.Scopes, Node: r.Node, Account: accName, PublicKey: upub, Issued: now.UTC().Truncate(time.Second)}
	if expires > 0 {
		u.Expires = time.Unix(uc.Expires, 0).UTC()
	}
	return creds, u, nil
}
