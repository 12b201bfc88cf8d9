package projector

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hoist-dev/hoist/events"
)

// ErrNoKey rejects a secret for a scope no node holds a key of yet.
var ErrNoKey = errors.New("the scope has no secret key yet: an admin grants a node with 'hoist secret grant SCOPE NODE', and that node's agent makes the key")

// Keyring is who may open a scope's secrets, and with which keys. It
// follows the scope's history but, unlike the spec, is not rolled back: a
// rollback restores secrets sealed to older keys, which stay in the ring,
// and never gives a revoked node its grant back.
type Keyring struct {
	Grants map[string]Grant // by node
	Keys   []ScopeKey       // Keys[v-1] is version v
	// Rotate is the revision of the rotate or revoke that asks for a new
	// key, or 0 when the current key is the one to seal to.
	Rotate uint64
}

// Grant lets a node open the scope's secrets.
type Grant struct {
	Node     string
	NodeKey  string // the node's public key the grant is for
	Actor    string // who speaks for the node: its agent's credential
	Revision uint64
}

// ScopeKey is one version of the scope's key pair.
type ScopeKey struct {
	Version  int
	Public   string
	Node     string            // the granted node that made it
	Revision uint64            // the revision that made it
	Seeds    map[string]string // the private key sealed to each node, by node
	SealedTo map[string]string // the node key each seed is sealed to, by node
}

// Current is the key new secrets are sealed to, or nil before the first.
func (k *Keyring) Current() *ScopeKey {
	if len(k.Keys) == 0 {
		return nil
	}
	return &k.Keys[len(k.Keys)-1]
}

// Version returns the key of version v, or nil.
func (k *Keyring) Version(v int) *ScopeKey {
	if v < 1 || v > len(k.Keys) {
		return nil
	}
	return &k.Keys[v-1]
}

// Pending lists the granted nodes, sorted, that have no copy of the
// current key sealed to the node key of their grant: the ones a granted
// agent still has to hand the key to.
func (k *Keyring) Pending() []string {
	cur := k.Current()
	var out []string
	for _, node := range slices.Sorted(maps.Keys(k.Grants)) {
		if cur == nil || cur.SealedTo[node] != k.Grants[node].NodeKey {
			out = append(out, node)
		}
	}
	return out
}

// Clone returns a deep copy of k, to hand to another goroutine.
func (k *Keyring) Clone() *Keyring {
	c := &Keyring{Grants: maps.Clone(k.Grants), Keys: slices.Clone(k.Keys), Rotate: k.Rotate}
	for i := range c.Keys {
		c.Keys[i].Seeds = maps.Clone(c.Keys[i].Seeds)
		c.Keys[i].SealedTo = maps.Clone(c.Keys[i].SealedTo)
	}
	return c
}

// ringChange is what a secret event does to the keyring once it applies.
type ringChange func(k *Keyring)

// nextSecret computes what a secret event leads to: the spec (for
// set, remove and a new key's reseal) and the change to the keyring.
func (h *History) nextSecret(e *events.Event, rev uint64) (snapshot, ringChange, error) {
	cur := snapshot{spec: h.state.Spec, removed: h.state.Removed}
	ring := &h.ring
	switch d := e.Data.(type) {
	case *events.SecretSet:
		if cur.spec == nil {
			return cur, nil, ErrNoDeploy
		}
		key := ring.Current()
		switch {
		case key == nil:
			return cur, nil, ErrNoKey
		case d.Key != key.Version:
			return cur, nil, fmt.Errorf("is sealed to key v%d, not to the current v%d", d.Key, key.Version)
		}
		for name, s := range cur.spec.Secrets {
			if name != d.Name && d.File != "" && s.File == d.File {
				return cur, nil, fmt.Errorf("writes the file %s of secret %s", d.File, name)
			}
		}
		spec := cur.spec.Clone()
		if spec.Secrets == nil {
			spec.Secrets = map[string]events.Secret{}
		}
		spec.Secrets[d.Name] = d.Secret
		return snapshot{spec: spec, removed: cur.removed}, nil, nil

	case *events.SecretRemoved:
		if cur.spec == nil {
			return cur, nil, ErrNoDeploy
		}
		if _, ok := cur.spec.Secrets[d.Name]; !ok {
			return cur, nil, fmt.Errorf("removes the secret %s, which the scope does not have", d.Name)
		}
		spec := cur.spec.Clone()
		delete(spec.Secrets, d.Name)
		if len(spec.Secrets) == 0 {
			spec.Secrets = nil
		}
		return snapshot{spec: spec, removed: cur.removed}, nil, nil

	case *events.SecretRotate:
		if ring.Current() == nil {
			return cur, nil, ErrNoKey
		}
		return cur, func(k *Keyring) { k.Rotate = rev }, nil

	case *events.SecretGranted:
		g := Grant{Node: d.Node, NodeKey: d.NodeKey, Actor: d.Actor, Revision: rev}
		return cur, func(k *Keyring) {
			if k.Grants == nil {
				k.Grants = map[string]Grant{}
			}
			k.Grants[g.Node] = g
		}, nil

	case *events.SecretRevoked:
		if _, ok := ring.Grants[d.Node]; !ok {
			return cur, nil, fmt.Errorf("revokes node %s, which has no grant", d.Node)
		}
		return cur, func(k *Keyring) {
			delete(k.Grants, d.Node)
			if k.Current() != nil {
				k.Rotate = rev // the node holds the current key: seal to a new one
			}
		}, nil

	case *events.SecretKey:
		return h.nextKey(e.Actor, d, rev)
	}
	return cur, nil, fmt.Errorf("is a %s event, not a secret change", e.Kind)
}

// nextKey checks a scope key event: it comes from a granted node, in the
// name its grant was made for, and hands the key only to granted nodes.
func (h *History) nextKey(actor string, d *events.SecretKey, rev uint64) (snapshot, ringChange, error) {
	cur := snapshot{spec: h.state.Spec, removed: h.state.Removed}
	ring := &h.ring
	g, ok := ring.Grants[d.Node]
	switch {
	case !ok:
		return cur, nil, fmt.Errorf("comes from node %s, which has no grant", d.Node)
	case actor != g.Actor:
		return cur, nil, fmt.Errorf("is published by %q, but node %s was granted as %q", actor, d.Node, g.Actor)
	}
	sealedTo := map[string]string{}
	for node := range d.Seeds {
		g, ok := ring.Grants[node]
		if !ok {
			return cur, nil, fmt.Errorf("hands the key to node %s, which has no grant", node)
		}
		sealedTo[node] = g.NodeKey
	}
	key := ring.Current()
	version := 0
	if key != nil {
		version = key.Version
	}
	switch d.Version {
	case version: // more nodes' copies of the current key
		switch {
		case key == nil:
			return cur, nil, errors.New("is key version 0")
		case d.Public != key.Public:
			return cur, nil, fmt.Errorf("is version %d with another public key than the one in the log", d.Version)
		case len(d.Resealed) > 0:
			return cur, nil, fmt.Errorf("reseals secrets to key v%d, which already exists", d.Version)
		}
		return cur, func(k *Keyring) {
			cur := k.Current()
			maps.Copy(cur.Seeds, d.Seeds)
			maps.Copy(cur.SealedTo, sealedTo)
		}, nil

	case version + 1: // a new key: every current secret comes resealed
		next := cur
		var have []string
		if cur.spec != nil {
			have = slices.Sorted(maps.Keys(cur.spec.Secrets))
		}
		if got := slices.Sorted(maps.Keys(d.Resealed)); !slices.Equal(got, have) {
			return cur, nil, fmt.Errorf("reseals the secrets %v, but the scope has %v", got, have)
		}
		if len(have) > 0 {
			spec := cur.spec.Clone()
			for _, name := range have {
				s := spec.Secrets[name]
				s.Key, s.Sealed = d.Version, d.Resealed[name]
				spec.Secrets[name] = s
			}
			next = snapshot{spec: spec, removed: cur.removed}
		}
		k := ScopeKey{Version: d.Version, Public: d.Public, Node: d.Node, Revision: rev, Seeds: maps.Clone(d.Seeds), SealedTo: sealedTo}
		return next, func(ring *Keyring) {
			ring.Keys = append(ring.Keys, k)
			ring.Rotate = 0
		}, nil
	}
	return cur, nil, fmt.Errorf("is key version %d, but the current one is %d", d.Version, version)
}

// checkSealedTo refuses a deployed spec whose secrets name a key version
// the scope does not have.
func (k *Keyring) checkSealedTo(spec *events.Spec) error {
	for _, name := range slices.Sorted(maps.Keys(spec.Secrets)) {
		if v := spec.Secrets[name].Key; k.Version(v) == nil {
			return fmt.Errorf("seals secret %s to key v%d, which the scope does not have", name, v)
		}
	}
	return nil
}
