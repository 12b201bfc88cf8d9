package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// reconciler is what a worker needs of deploy.Reconciler.
type reconciler interface {
	Reconcile(ctx context.Context, d deploy.Desired) (deploy.Result, error)
}

// lister is what a worker needs of a runtime to observe without acting.
type lister interface {
	List(ctx context.Context) ([]deploy.Replica, error)
}

// Backoff of a worker whose reconciles fail with an error (the runtime is
// unreachable, a call failed). A failed rollout is held back by the
// Reconciler itself and is not an error here.
const (
	minRetry = time.Second
	maxRetry = 30 * time.Second
)

// driftDelay coalesces a burst of drift hints (a "docker rm -f" says die,
// then destroy) into one reconcile that runs once the runtime has settled,
// instead of one that races a removal still in progress.
const driftDelay = 500 * time.Millisecond

// worker is the one goroutine that reconciles one scope: on a new desired
// state, on a drift hint, and every resync. A new revision that changes
// what runs cancels the reconcile in flight, whose rollout then takes back
// what it started.
type worker struct {
	scope  events.Scope
	rec    reconciler
	rt     lister
	st     *statusBook
	log    *slog.Logger
	resync time.Duration
	wake   chan struct{} // cap 1
	// persist asks for the reference file to be written, so remembered
	// rollout failures survive a restart.
	persist func()

	mu         sync.Mutex
	d          deploy.Desired
	known      bool
	inflight   context.CancelFunc
	inflightD  deploy.Desired // what the reconcile in flight is for
	driftTimer *time.Timer

	life *lifecycle.Group
}

func startWorker(parent context.Context, w *worker) *worker {
	w.wake = make(chan struct{}, 1)
	w.life = lifecycle.New(parent, w.log, stopBound)
	w.life.Go("worker "+w.scope.String(), w.run)
	w.poke()
	return w
}

// stopAndWait stops the worker and returns once its goroutine is gone, or
// after stopBound with an error naming it. A rollout in flight takes back
// its unproven replicas first.
func (w *worker) stopAndWait() error {
	w.mu.Lock()
	if w.driftTimer != nil {
		w.driftTimer.Stop()
	}
	w.mu.Unlock()
	return w.life.Stop()
}

// drift asks for a reconcile once the runtime's hints have settled.
func (w *worker) drift() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.driftTimer == nil {
		w.driftTimer = time.AfterFunc(driftDelay, w.poke)
		return
	}
	w.driftTimer.Reset(driftDelay)
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// setDesired hands the worker a new desired state. One that runs
// something else supersedes a reconcile in flight; a revision that changes
// nothing the replicas run (a rejected message, a grant, a scope key
// handed on) lets it finish, and is reconciled right after.
func (w *worker) setDesired(d deploy.Desired) {
	w.mu.Lock()
	w.d, w.known = d, true
	if w.inflight != nil && w.inflightD.Revision != d.Revision && runsOtherwise(w.inflightD, d) {
		w.log.Info("new revision supersedes the reconcile in flight", "from", w.inflightD.Revision, "to", d.Revision)
		w.inflight()
	}
	w.mu.Unlock()
	w.st.setDesired(d)
	w.poke()
}

func (w *worker) desired() (deploy.Desired, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d, w.known
}

func (w *worker) run(ctx context.Context) {
	timer := time.NewTimer(w.resync)
	defer timer.Stop()
	retry := time.Duration(0)
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		next := w.resync
		d, known := w.desired()
		switch {
		case !known:
			w.observe(ctx) // never act on desired state that was not read
		case d.Spec == nil && !d.Removed:
			// Never deployed: nothing should run, and nothing is known
			// that would justify touching what does.
		default:
			err := w.reconcile(ctx, d)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, context.Canceled) {
				continue // superseded: the new desired state has poked us
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			var rerr *deploy.RolloutError
			if w.persist != nil && (errors.As(err, &rerr) || (err == nil && lastErr != "")) {
				w.persist()
			}
			switch {
			case err != nil && !errors.As(err, &rerr):
				retry = min(max(2*retry, minRetry), maxRetry)
				next = min(retry, w.resync)
				if msg != lastErr {
					w.log.Warn("reconcile failed; retrying with backoff", "scope", w.scope, "revision", d.Revision, "err", err, "retry_in", next)
				}
			case err == nil && lastErr != "":
				retry = 0
				w.log.Info("reconcile recovered", "scope", w.scope, "revision", d.Revision)
			default:
				retry = 0
			}
			lastErr = msg
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// runsOtherwise reports whether b asks for other replicas than a. Folds
// share a spec between revisions that do not change it, so the pointers
// tell. A canary's shift, a pause or a maintenance page changes only what
// balancers do: it runs nothing else.
func runsOtherwise(a, b deploy.Desired) bool {
	if a.Spec != b.Spec || a.Removed != b.Removed || (a.Canary == nil) != (b.Canary == nil) {
		return true
	}
	return a.Canary != nil && (a.Canary.ID != b.Canary.ID || a.Canary.Spec != b.Canary.Spec || a.Canary.Replicas != b.Canary.Replicas)
}

// reconcile runs one reconcile of d that a newer revision may cancel.
func (w *worker) reconcile(ctx context.Context, d deploy.Desired) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	if w.d.Revision != d.Revision {
		w.mu.Unlock()
		return context.Canceled
	}
	w.inflight, w.inflightD = cancel, d
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight = nil
		w.mu.Unlock()
	}()

	w.st.setReconciling(w.scope, true)
	res, err := w.rec.Reconcile(rctx, d)
	w.st.setReconciling(w.scope, false)
	if rctx.Err() != nil && ctx.Err() == nil {
		return context.Canceled
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.st.setResult(d, res, err)
	return err
}

// observe lists the scope's replicas for the status, changing nothing.
func (w *worker) observe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	all, err := w.rt.List(ctx)
	if err != nil {
		w.log.Debug("observe replicas", "scope", w.scope, "err", err)
		return
	}
	var mine []deploy.Replica
	for _, r := range all {
		if r.Scope == w.scope {
			mine = append(mine, r)
		}
	}
	w.st.setObserved(w.scope, mine)
}
