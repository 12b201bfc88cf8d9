package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// vault holds the node's own key and the scope keys it has opened. Scope
// keys reach it only sealed to the node's key, in the scope's history; the
// node's key never leaves its key file.
type vault struct {
	node string
	key  *secrets.Key

	mu     sync.Mutex
	opened map[string]*secrets.Key // by the sealed seed they came from
}

func newVault(node string, key *secrets.Key) *vault {
	return &vault{node: node, key: key, opened: map[string]*secrets.Key{}}
}

// granted reports whether ring grants this node, for its current key.
func (v *vault) granted(ring *projector.Keyring) bool {
	g, ok := ring.Grants[v.node]
	return ok && g.NodeKey == v.key.Public().String()
}

// scopeKey opens version version of a scope's key.
func (v *vault) scopeKey(ring *projector.Keyring, version int) (*secrets.Key, error) {
	k := ring.Version(version)
	if k == nil {
		return nil, fmt.Errorf("key v%d is not in the scope's history", version)
	}
	sealed, ok := k.Seeds[v.node]
	switch {
	case !ok && !v.granted(ring):
		return nil, fmt.Errorf("node %s has no grant (an admin grants it: hoist secret grant SCOPE %s)", v.node, v.node)
	case !ok:
		return nil, fmt.Errorf("node %s is granted, but no granted node has handed it key v%d yet", v.node, version)
	}
	v.mu.Lock()
	sk := v.opened[sealed]
	v.mu.Unlock()
	if sk != nil {
		return sk, nil
	}
	sk, err := v.key.OpenKey(sealed)
	if err != nil {
		return nil, fmt.Errorf("key v%d was sealed to another key of node %s (%w); the node needs a new grant", version, v.node, err)
	}
	if sk.Public().String() != k.Public {
		return nil, fmt.Errorf("the key v%d handed to node %s is not the key of the scope's history", version, v.node)
	}
	v.mu.Lock()
	v.opened[sealed] = sk
	v.mu.Unlock()
	return sk, nil
}

// opener opens one spec's secrets with a scope's keyring as it was when
// the spec was delivered.
type opener struct {
	v    *vault
	ring *projector.Keyring
}

func (o opener) Open(spec *events.Spec) ([]deploy.Secret, error) {
	out := make([]deploy.Secret, 0, len(spec.Secrets))
	for _, name := range slices.Sorted(maps.Keys(spec.Secrets)) {
		s := spec.Secrets[name]
		key, err := o.v.scopeKey(o.ring, s.Key)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		value, err := key.Open(s.Sealed)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		out = append(out, deploy.Secret{Name: name, Value: value, File: s.File})
	}
	return out, nil
}

// duty is what this node owes a scope's keyring: the first key when it is
// granted and there is none, a new key when a rotation is due, or copies
// of the current key for granted nodes that lack one. It returns nil when
// nothing is due, or when this node cannot help (it holds no key).
func (v *vault) duty(ring *projector.Keyring, spec *events.Spec) (*events.SecretKey, error) {
	if !v.granted(ring) {
		return nil, nil
	}
	cur := ring.Current()
	if cur == nil {
		return v.newKey(ring, spec)
	}
	mine, err := v.scopeKey(ring, cur.Version)
	if err != nil {
		return nil, nil // a node that holds the key does what is due
	}
	if ring.Rotate != 0 {
		return v.newKey(ring, spec)
	}
	pending := ring.Pending()
	if len(pending) == 0 {
		return nil, nil
	}
	ev := &events.SecretKey{Version: cur.Version, Public: cur.Public, Node: v.node, Seeds: map[string]string{}}
	if err := sealTo(ev.Seeds, ring, pending, mine); err != nil {
		return nil, err
	}
	return ev, nil
}

// newKey makes the next version of the scope key, handed to every granted
// node, with every secret of spec resealed to it.
func (v *vault) newKey(ring *projector.Keyring, spec *events.Spec) (*events.SecretKey, error) {
	k, err := secrets.GenerateKey()
	if err != nil {
		return nil, err
	}
	ev := &events.SecretKey{Version: 1, Public: k.Public().String(), Node: v.node, Seeds: map[string]string{}}
	if cur := ring.Current(); cur != nil {
		ev.Version = cur.Version + 1
	}
	if spec != nil && len(spec.Secrets) > 0 {
		opened, err := opener{v: v, ring: ring}.Open(spec)
		if err != nil {
			return nil, fmt.Errorf("cannot reseal to a new key: %w", err)
		}
		ev.Resealed = make(map[string]string, len(opened))
		for _, s := range opened {
			ev.Resealed[s.Name], err = secrets.Seal(k.Public(), s.Value)
			clear(s.Value)
			if err != nil {
				return nil, err
			}
		}
	}
	if err := sealTo(ev.Seeds, ring, slices.Sorted(maps.Keys(ring.Grants)), k); err != nil {
		return nil, err
	}
	return ev, nil
}

// sealTo seals k to each node's granted key, into seeds.
func sealTo(seeds map[string]string, ring *projector.Keyring, nodes []string, k *secrets.Key) error {
	for _, node := range nodes {
		pub, err := secrets.ParsePublicKey(ring.Grants[node].NodeKey)
		if err != nil {
			return fmt.Errorf("grant of node %s: %w", node, err)
		}
		if seeds[node], err = secrets.SealKey(pub, k); err != nil {
			return err
		}
	}
	return nil
}

// keeper publishes what the vault owes: the node's public key once the
// node's history does not show it, and each scope's due key events. It
// works on the latest keyring of each scope; an append that loses to
// another publisher is dropped, since the event that won brings a new
// keyring.
type keeper struct {
	v     *vault
	actor string
	log   *slog.Logger
	store func() *store.Store

	mu       sync.Mutex
	jobs     map[events.Scope]keyJob
	announce bool
	wake     chan struct{}
}

type keyJob struct {
	revision uint64
	ring     *projector.Keyring
	spec     *events.Spec
}

// retryKeys is how soon a key event that failed for another reason than
// a lost race is tried again.
const retryKeys = 2 * time.Second

func newKeeper(v *vault, actor string, log *slog.Logger, st func() *store.Store) *keeper {
	return &keeper{v: v, actor: actor, log: log, store: st, jobs: map[events.Scope]keyJob{}, wake: make(chan struct{}, 1)}
}

func (k *keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// offer hands the keeper a scope's keyring as of revision.
func (k *keeper) offer(scope events.Scope, revision uint64, ring *projector.Keyring, spec *events.Spec) {
	if len(ring.Grants) == 0 {
		return
	}
	k.mu.Lock()
	k.jobs[scope] = keyJob{revision: revision, ring: ring, spec: spec}
	k.mu.Unlock()
	k.poke()
}

// nodeKeyIs tells the keeper the node key that the node's history shows.
func (k *keeper) nodeKeyIs(public string) {
	if public == k.v.key.Public().String() {
		return
	}
	k.mu.Lock()
	k.announce = true
	k.mu.Unlock()
	k.poke()
}

func (k *keeper) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		case <-retry.C:
		}
		if !k.work(ctx) {
			retry.Reset(retryKeys)
		}
	}
}

// work publishes what is due and reports whether all of it is done.
func (k *keeper) work(ctx context.Context) bool {
	st := k.store()
	if st == nil {
		return false
	}
	k.mu.Lock()
	announce, jobs := k.announce, k.jobs
	k.announce, k.jobs = false, map[events.Scope]keyJob{}
	k.mu.Unlock()

	ok := true
	failed := func(scope events.Scope, job keyJob) {
		ok = false
		k.mu.Lock()
		if _, newer := k.jobs[scope]; !newer {
			k.jobs[scope] = job
		}
		k.mu.Unlock()
	}
	if announce {
		pub := k.v.key.Public()
		_, err := k.append(ctx, st, &events.Event{Node: k.v.node, Data: &events.NodeKey{Public: pub.String()}}, store.AppendOptions{})
		if err != nil {
			k.log.Error("cannot announce the node's public key; retrying", "err", err)
			ok = false
			k.mu.Lock()
			k.announce = true
			k.mu.Unlock()
		} else {
			k.log.Info("announced the node's public key", "key", pub.Fingerprint())
		}
	}
	for _, scope := range sortedScopes(jobs) {
		job := jobs[scope]
		ev, err := k.v.duty(job.ring, job.spec)
		if err != nil {
			k.log.Error("cannot do the scope's key work", "scope", scope, "err", err)
			continue // a new grant or key brings a new job
		}
		if ev == nil {
			continue
		}
		rev := job.revision
		stored, err := k.append(ctx, st, &events.Event{Scope: scope, Data: ev}, store.AppendOptions{ExpectRevision: &rev})
		var conflict *store.ConflictError
		switch {
		case errors.As(err, &conflict):
			k.log.Debug("key event lost to a newer event; waiting for it", "scope", scope)
		case err != nil:
			k.log.Error("cannot publish the scope's key; retrying", "scope", scope, "err", err)
			failed(scope, job)
		default:
			k.log.Info(keyWork(ev, job.ring), "scope", scope, "revision", stored.Revision, "key", "v"+fmt.Sprint(ev.Version), "nodes", slices.Sorted(maps.Keys(ev.Seeds)))
		}
	}
	return ok
}

func (k *keeper) append(ctx context.Context, st *store.Store, e *events.Event, opts store.AppendOptions) (*events.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e.Actor = k.actor
	return st.Append(ctx, e, opts)
}

// keyWork says what a key event does, for the log.
func keyWork(ev *events.SecretKey, ring *projector.Keyring) string {
	switch cur := ring.Current(); {
	case cur == nil:
		return "made the scope's first key"
	case ev.Version > cur.Version:
		return fmt.Sprintf("made a new scope key and resealed %d secrets to it", len(ev.Resealed))
	}
	return "handed the scope key to newly granted nodes"
}
