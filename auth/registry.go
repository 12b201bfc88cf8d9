package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// KindSystem is the system account's user (sys.creds): it pushes account
// updates. It is not a role anyone is issued.
const KindSystem Kind = "system"

// User is one issued credential, as the registry keeps it.
type User struct {
	Name      string    `json:"name"`
	Kind      Kind      `json:"role"`
	Scopes    []string  `json:"scopes,omitempty"`
	Node      string    `json:"node,omitempty"`
	Account   string    `json:"account"` // HOIST or SYS
	PublicKey string    `json:"public_key"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires,omitzero"`
	Revoked   time.Time `json:"revoked,omitzero"`
}

// Role is the role the credential was issued for.
func (u User) Role() Role { return Role{Kind: u.Kind, Name: u.Name, Scopes: u.Scopes, Node: u.Node} }

// Live says whether the credential still lets its holder connect.
func (u User) Live(now time.Time) bool {
	return u.Revoked.IsZero() && (u.Expires.IsZero() || now.Before(u.Expires))
}

type registry struct {
	Users []User `json:"users"`
}

func loadRegistry(dir string) (*registry, error) {
	b, err := os.ReadFile(filepath.Join(dir, registryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &registry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	var r registry
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read registry %s: %w", filepath.Join(dir, registryFile), err)
	}
	return &r, nil
}

func (r *registry) save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return replace(filepath.Join(dir, registryFile), append(b, '\n'), secretPerm)
}

// live returns the credential called name that can still connect.
func (r *registry) live(name string, now time.Time) (User, bool) {
	for _, u := range r.Users {
		if u.Name == name && u.Live(now) {
			return u, true
		}
	}
	return User{}, false
}

// Users lists the registry, oldest first.
func Users(dir string) ([]User, error) {
	if _, err := os.Stat(filepath.Join(dir, operatorFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (run 'hoist auth init --dir %s')", ErrNoAuthDir, dir, operatorFile, dir)
	}
	r, err := loadRegistry(dir)
	if err != nil {
		return nil, err
	}
	return slices.Clone(r.Users), nil
}
