package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// rollout carries out one plan for one scope, step by step, and keeps the
// view of the scope's live replicas up to date as it goes.
type rollout struct {
	r        *Reconciler
	d        Desired
	live     map[string]Replica // by ID
	started  map[slot]Replica   // new replicas of this rollout
	verified map[slot]bool      // slots whose new replica passed its health check
	opened   map[Track][]Secret // each track's secrets, opened at its first start
	done     []Action
	exits    []Exit // replicas that had exited on their own, removed
}

// slot is a replica's place within its scope on this node: a track and an
// index in it.
type slot struct {
	track Track
	index int
}

func (a Action) slot() slot   { return slot{a.Track, a.Index} }
func (r Replica) slot() slot  { return slot{r.Track, r.Index} }
func (s slot) String() string { return string(s.track) + s.track.Index(s.index) }

func newRollout(r *Reconciler, d Desired, observed []Replica) *rollout {
	ro := &rollout{r: r, d: d, live: map[string]Replica{}, started: map[slot]Replica{}, verified: map[slot]bool{}, opened: map[Track][]Secret{}}
	for _, rep := range observed {
		if !rep.State.Gone() && rep.State != StateRemoving {
			ro.live[rep.ID] = rep
		}
	}
	return ro
}

func (ro *rollout) replicas() []Replica { return slices.Collect(maps.Values(ro.live)) }

// run executes acts in order and stops at the first failure. After a
// failed start or health check it takes back the new replicas that have not
// yet replaced an old one, so the old ones keep serving alone.
func (ro *rollout) run(ctx context.Context, acts []Action) error {
	for _, a := range acts {
		if err := ctx.Err(); err != nil {
			ro.takeBack(ctx)
			return err
		}
		if err := ro.step(ctx, a); err != nil {
			ro.takeBack(ctx)
			return err
		}
		ro.done = append(ro.done, a)
	}
	return nil
}

func (ro *rollout) step(ctx context.Context, a Action) error {
	r, d := ro.r, ro.d
	log := r.log.With("scope", d.Scope, "revision", d.Revision, "index", a.Index)
	if a.Track != TrackStable {
		log = log.With("track", a.Track)
	}
	spec, _ := d.specOf(a.Track)
	switch a.Kind {
	case ActionStart:
		cctx, cancel := context.WithTimeout(ctx, r.cfg.StartTimeout)
		defer cancel()
		opened, err := ro.openSecrets(a.Track, spec)
		if err != nil {
			return ro.rolloutError(a, err)
		}
		rep, err := r.rt.Start(cctx, ReplicaSpec{Scope: d.Scope, Track: a.Track, Index: a.Index, Revision: d.Revision, SpecHash: a.SpecHash, Spec: spec, Secrets: opened})
		if err != nil {
			return ro.rolloutError(a, fmt.Errorf("did not start: %w", err))
		}
		rep.Healthy = boolPtr(false) // unproven until its wait
		ro.live[rep.ID], ro.started[a.slot()] = rep, rep
		log.Info("started replica", "id", ShortID(rep.ID), "reason", a.Reason, "host_port", rep.HostPort)

	case ActionWaitHealthy:
		rep, ok := ro.started[a.slot()]
		if !ok {
			return fmt.Errorf("plan waits on replica %s, which this rollout did not start", a.slot())
		}
		if err := r.waitHealthy(ctx, spec, rep); err != nil {
			return ro.rolloutError(a, err)
		}
		rep.Healthy = boolPtr(true)
		ro.live[rep.ID], ro.started[a.slot()], ro.verified[a.slot()] = rep, rep, true
		log.Info("replica healthy", "id", ShortID(rep.ID))
		ro.announce()

	case ActionStop:
		delete(ro.live, a.Replica.ID)
		ro.announce()
		if err := ro.confirm(ctx); err != nil {
			ro.live[a.Replica.ID] = a.Replica // it never stopped serving
			ro.announce()
			return err
		}
		if err := r.drain(ctx); err != nil {
			return err
		}
		if err := r.stopAndRemove(ctx, a.Replica.ID); err != nil {
			ro.live[a.Replica.ID] = a.Replica
			return fmt.Errorf("stop replica %d (%s): %w", a.Index, ShortID(a.Replica.ID), err)
		}
		log.Info("stopped replica", "id", ShortID(a.Replica.ID), "reason", a.Reason)

	case ActionRemove:
		if a.Replica.State == StateExited || a.Replica.State == StateDead {
			// Its logs go with it: keep its last lines first.
			ro.exits = append(ro.exits, r.lastWords(ctx, a.Replica, a.Replica.Detail))
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		defer cancel()
		if err := r.rt.Remove(cctx, a.Replica.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove replica %d (%s): %w", a.Index, ShortID(a.Replica.ID), err)
		}
		log.Info("removed replica", "id", ShortID(a.Replica.ID), "state", a.Replica.State, "detail", a.Replica.Detail)
	}
	return nil
}

// openSecrets opens the secrets of a track's spec for a replica start,
// once per rollout. A canary's sealed secrets open as the stable spec's
// do, with the scope's keys. Failing, the rollout stops before the
// track's first start, so the running replicas are left alone.
func (ro *rollout) openSecrets(t Track, spec *events.Spec) ([]Secret, error) {
	if len(spec.Secrets) == 0 {
		return nil, nil
	}
	if ro.opened[t] == nil {
		if ro.d.Secrets == nil {
			return nil, fmt.Errorf("%w: this node holds no key of %s (an admin grants it: hoist secret grant %s NODE)", ErrSecrets, ro.d.Scope, ro.d.Scope)
		}
		opened, err := ro.d.Secrets.Open(spec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSecrets, err)
		}
		ro.opened[t] = opened
	}
	return ro.opened[t], nil
}

func (ro *rollout) rolloutError(a Action, err error) error {
	return &RolloutError{Scope: ro.d.Scope, Revision: ro.d.Revision, Index: a.Index, SpecHash: a.SpecHash, Err: err}
}

// takeBack stops the replicas this rollout started that are unproven, or
// proven but still sharing their index with the replica they were to
// replace. A proven replica that filled an empty index stays: it serves.
func (ro *rollout) takeBack(ctx context.Context) {
	// Cleanup must run even when ctx was cancelled, within its own bound.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ro.r.cfg.StopTimeout+ro.r.cfg.CallTimeout)
	defer cancel()
	for _, s := range slices.SortedFunc(maps.Keys(ro.started), func(a, b slot) int {
		return cmp.Or(cmp.Compare(a.track, b.track), cmp.Compare(a.index, b.index))
	}) {
		rep := ro.started[s]
		if ro.verified[s] && !ro.shared(rep) {
			continue
		}
		delete(ro.live, rep.ID)
		if err := ro.r.stopAndRemove(cctx, rep.ID); err != nil {
			ro.r.log.Error("take back new replica", "scope", ro.d.Scope, "index", s.String(), "id", ShortID(rep.ID), "err", err)
			continue
		}
		ro.r.log.Info("took back new replica", "scope", ro.d.Scope, "index", s.String(), "id", ShortID(rep.ID))
	}
	ro.started = map[slot]Replica{}
}

// shared reports whether another live replica holds rep's slot.
func (ro *rollout) shared(rep Replica) bool {
	for _, o := range ro.live {
		if o.slot() == rep.slot() && o.ID != rep.ID {
			return true
		}
	}
	return false
}

func (ro *rollout) announce() {
	if ro.r.cfg.OnBackends != nil {
		ro.r.cfg.OnBackends(ro.d.Scope, ro.r.backends(ro.d, ro.replicas()))
	}
}

// Pauses of a rollout that waits for its backends to be acknowledged.
const (
	confirmFirstRetry = 200 * time.Millisecond
	confirmMaxRetry   = 3 * time.Second
)

// confirm waits until the backend set just announced is acknowledged
// (Config.Confirm), retrying until ctx ends: a newer revision, or the
// agent stopping.
func (ro *rollout) confirm(ctx context.Context) error {
	cfg := ro.r.cfg
	if cfg.Confirm == nil {
		return nil
	}
	backends := ro.r.backends(ro.d, ro.replicas()).Addrs
	wait, paused := confirmFirstRetry, false
	defer func() {
		if paused && cfg.OnPaused != nil {
			cfg.OnPaused(ro.d.Scope, "")
		}
	}()
	for {
		err := cfg.Confirm(ctx, ro.d.Scope, backends)
		if err == nil {
			if paused {
				ro.r.log.Info("rollout goes on: backends announced", "scope", ro.d.Scope, "revision", ro.d.Revision, "backends", backends)
			}
			return nil
		}
		if !paused {
			paused = true
			reason := fmt.Sprintf("rollout paused: cannot announce the backends to balancers (%v); the replica it would stop keeps serving", err)
			ro.r.log.Warn(reason, "scope", ro.d.Scope, "revision", ro.d.Revision)
			if cfg.OnPaused != nil {
				cfg.OnPaused(ro.d.Scope, reason)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, confirmMaxRetry)
	}
}

// drain gives balancers DrainDelay to act on an announcement.
func (r *Reconciler) drain(ctx context.Context) error {
	if r.cfg.DrainDelay <= 0 || r.cfg.OnBackends == nil {
		return nil
	}
	t := time.NewTimer(r.cfg.DrainDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopAndRemove stops a replica gracefully, kills it after StopTimeout, and
// removes it. A replica that is already gone counts as done.
func (r *Reconciler) stopAndRemove(ctx context.Context, id string) error {
	sctx, cancel := context.WithTimeout(ctx, r.cfg.StopTimeout+r.cfg.CallTimeout)
	defer cancel()
	if err := r.rt.Stop(sctx, id, r.cfg.StopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	rctx, cancel2 := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel2()
	if err := r.rt.Remove(rctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
