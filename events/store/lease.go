package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// Leases: a key-value bucket whose keys are held by one process at a
// time. A holder takes a key with Take (it fails while the key is held)
// and keeps it by renewing it before LeaseTTL runs out, each renewal
// conditional on the revision it last wrote; a key nobody renews expires
// with the bucket's age limit, and anyone may take it then.
//
// A lease alone does not stop two holders from acting at once (a holder
// may pause past its TTL and not know): whatever it guards must also be
// fenced, e.g. by a conditional append.
const (
	leasesBucket = "HOIST_LEASES"
	// defaultLeaseTTL is the bucket's age limit: three renewals of an
	// analysis's two-second period.
	defaultLeaseTTL = 6 * time.Second
)

// LeaseKey is the key of the lease on a scope's canary analysis.
func LeaseKey(s events.Scope) string { return "canary." + s.String() }

// ErrLeaseHeld says a lease is held by someone else, or was renewed by
// someone else since the caller's revision.
var ErrLeaseHeld = errors.New("the lease is held by another")

// Leases is the leases bucket.
type Leases struct {
	kv      jetstream.KeyValue
	ttl     time.Duration
	denials *denials
}

// leasesConfig is the bucket OpenStore sets up.
func leasesConfig(replicas int, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      leasesBucket,
		Description: "hoist leases: who runs a canary's analysis",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// ensureLeases creates the leases bucket, or updates its TTL.
func (s *Store) ensureLeases(ctx context.Context, keepReplicas bool, replicas int, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := leasesConfig(replicas, ttl)
	// One stream info, as for the streams: every process that opens the
	// store comes here.
	if st, err := s.js.Stream(ctx, "KV_"+leasesBucket); err == nil {
		have := st.CachedInfo().Config
		if have.MaxAge == ttl && (keepReplicas || have.Replicas == max(replicas, 1)) {
			return nil // as it should be: no update for every start
		}
		if keepReplicas {
			cfg.Replicas = have.Replicas
		}
	}
	if _, err := s.js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
		return fmt.Errorf("set up bucket %s: %w", leasesBucket, err)
	}
	return nil
}

// Leases opens the leases bucket. Its TTL is the bucket's, set when the
// store was set up: holders renew well within it.
func (s *Store) Leases(ctx context.Context) (*Leases, error) {
	gctx, release := s.denials.guard(ctx, "$JS.API.STREAM.INFO.KV_"+leasesBucket)
	defer release()
	tctx, cancel := context.WithTimeout(gctx, requestTimeout)
	defer cancel()
	kv, err := s.js.KeyValue(tctx, leasesBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", leasesBucket, unanswered(noQuorum(denied(gctx, err))))
	}
	st, err := kv.Status(tctx)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", leasesBucket, denied(gctx, err))
	}
	if st.TTL() <= 0 {
		return nil, fmt.Errorf("bucket %s has no TTL: a lease would never expire; set it up again with hoist server or an admin", leasesBucket)
	}
	return &Leases{kv: kv, ttl: st.TTL(), denials: s.denials}, nil
}

// guard bounds one request on key, and ends it at once when the server
// denies this credential the key's subject.
func (l *Leases) guard(ctx context.Context, key string) (context.Context, context.CancelFunc) {
	subj := "$KV." + leasesBucket + "." + key
	gctx, release := l.denials.guard(ctx, subj, "$JS.API.DIRECT.GET.KV_"+leasesBucket+"."+subj)
	tctx, cancel := context.WithTimeout(gctx, requestTimeout)
	return tctx, func() { cancel(); release() }
}

// TTL is how long a lease lasts without a renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Take takes key, if nobody holds it, with value; it returns the revision
// to renew on, or ErrLeaseHeld.
func (l *Leases) Take(ctx context.Context, key string, value []byte) (uint64, error) {
	ctx, cancel := l.guard(ctx, key)
	defer cancel()
	rev, err := l.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("take lease %s: %w", key, denied(ctx, err))
	}
	return rev, nil
}

// Renew keeps key, held since revision rev, for another TTL; it returns
// the new revision, or ErrLeaseHeld when someone else wrote the key since.
func (l *Leases) Renew(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	ctx, cancel := l.guard(ctx, key)
	defer cancel()
	next, err := l.kv.Update(ctx, key, value, rev)
	if isWrongLastSequence(err) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("renew lease %s: %w", key, denied(ctx, err))
	}
	return next, nil
}

// Holder returns the value of key and whether anybody holds it.
func (l *Leases) Holder(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := l.guard(ctx, key)
	defer cancel()
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read lease %s: %w", key, denied(ctx, err))
	}
	return e.Value(), true, nil
}

// Release gives key up, if it is still held at revision rev, so that
// another may take it at once instead of after the TTL.
func (l *Leases) Release(ctx context.Context, key string, rev uint64) error {
	ctx, cancel := l.guard(ctx, key)
	defer cancel()
	err := l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if isWrongLastSequence(err) {
		return ErrLeaseHeld
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", key, denied(ctx, err))
	}
	return nil
}
