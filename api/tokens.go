package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/internal/atomicfile"
)

// TokenEntry is one API token as its file keeps it: the role it acts as
// and the SHA-256 of the token, never the token itself. A token is 32
// random bytes, so a plain hash is as hard to reverse as the token is to
// guess.
type TokenEntry struct {
	Name   string    `toml:"name"`
	Role   auth.Kind `toml:"role"`
	Scopes []string  `toml:"scopes,omitempty"`
	Node   string    `toml:"node,omitempty"`
	SHA256 string    `toml:"sha256"`
	// Created is informational.
	Created time.Time `toml:"created,omitempty"`
}

// tokenFile is the TOML document: [[token]] tables.
type tokenFile struct {
	Token []TokenEntry `toml:"token"`
}

// tokenPrefix marks hoist API tokens, so a leaked one is recognisable.
const tokenPrefix = "hoist_"

// NewToken makes a random token and its entry for role.
func NewToken(role auth.Role) (token string, e TokenEntry, err error) {
	if role, err = role.Validate(); err != nil {
		return "", e, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", e, err
	}
	token = tokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	e = TokenEntry{Name: role.Name, Role: role.Kind, Scopes: role.Scopes, Node: role.Node, SHA256: hashToken(token), Created: time.Now().UTC().Truncate(time.Second)}
	return token, e, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// role is the entry's role, validated.
func (e TokenEntry) role() (auth.Role, error) {
	return auth.Role{Kind: e.Role, Name: e.Name, Scopes: e.Scopes, Node: e.Node}.Validate()
}

// readTokens reads and checks a token file. A missing file holds none.
func readTokens(path string) ([]TokenEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f tokenFile
	if _, err := toml.Decode(string(b), &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, e := range f.Token {
		if _, err := e.role(); err != nil {
			return nil, fmt.Errorf("%s: token %d (%s): %w", path, i+1, e.Name, err)
		}
		if len(e.SHA256) != 64 {
			return nil, fmt.Errorf("%s: token %s: sha256 must be 64 hex digits", path, e.Name)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%s: the name %s is used twice: each token needs its own (it is the actor of its writes)", path, e.Name)
		}
		seen[e.Name] = true
	}
	return f.Token, nil
}

// AddToken appends an entry to a token file (made 0600 if missing),
// written atomically. A name already in the file is refused.
func AddToken(path string, e TokenEntry) error {
	list, err := readTokens(path)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(list, func(o TokenEntry) bool { return o.Name == e.Name }) {
		return fmt.Errorf("%s already has a token named %s (remove its [[token]] block first)", path, e.Name)
	}
	var buf bytes.Buffer
	buf.WriteString("# hoist API tokens ('hoist api token' adds one). Only hashes are kept.\n")
	if err := toml.NewEncoder(&buf).Encode(tokenFile{Token: append(list, e)}); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o600)
}

// Tokens looks bearer tokens up in a token file, which it reads again
// when the file changes (checked at most once a second), so tokens are
// added and removed without a restart.
type Tokens struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	byHash  map[string]auth.Role
	modTime time.Time
	checked time.Time
	err     error
}

// OpenTokens reads the token file at path.
func OpenTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path, now: time.Now}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) reload() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	list, err := readTokens(t.path)
	if err != nil {
		return err
	}
	by := make(map[string]auth.Role, len(list))
	for _, e := range list {
		r, _ := e.role()
		by[strings.ToLower(e.SHA256)] = r
	}
	t.byHash, t.modTime = by, fi.ModTime()
	return nil
}

// Lookup returns the role of a token; ok is false for an unknown one.
func (t *Tokens) Lookup(token string) (auth.Role, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := t.now(); now.Sub(t.checked) >= time.Second {
		t.checked = now
		if fi, err := os.Stat(t.path); err == nil && !fi.ModTime().Equal(t.modTime) {
			// A bad edit keeps the tokens that were good.
			t.err = t.reload()
		}
	}
	h := hashToken(token)
	for k, r := range t.byHash {
		if subtle.ConstantTimeCompare([]byte(k), []byte(h)) == 1 {
			return r, true
		}
	}
	return auth.Role{}, false
}
