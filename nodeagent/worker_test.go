package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
)

// The worker's timing (backoff of failing reconciles, the drift delay, a
// rollout superseded or left to finish) runs here against a scripted
// reconciler inside a synctest bubble: its timers fire in virtual time
// once every goroutine waits, so the tests wait for nothing real and can
// assert the exact instant of each reconcile.

// errUnreachable stands for a runtime that does not answer: an error that
// is not a RolloutError, which the worker retries with backoff.
var errUnreachable = errors.New("runtime unreachable")

// reconcileCall is one reconcile the worker asked for: when, counted from
// the bubble's start, and of which revision.
type reconcileCall struct {
	At       time.Duration
	Revision uint64
}

// scriptedReconciler answers the n-th reconcile (from 0) with reply.
type scriptedReconciler struct {
	start time.Time
	reply func(ctx context.Context, n int, d deploy.Desired) error

	mu    sync.Mutex
	calls []reconcileCall
}

func (s *scriptedReconciler) Reconcile(ctx context.Context, d deploy.Desired) (deploy.Result, error) {
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, reconcileCall{At: time.Since(s.start), Revision: d.Revision})
	s.mu.Unlock()
	return deploy.Result{}, s.reply(ctx, n, d)
}

func (s *scriptedReconciler) taken() []reconcileCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// noReplicas is a runtime that runs nothing, for the worker's observe.
type noReplicas struct{}

func (noReplicas) List(context.Context) ([]deploy.Replica, error) { return nil, nil }

// startScriptedWorker starts a worker of scopeWeb on rec, to be stopped
// before the bubble ends. Call it inside synctest.Test.
func startScriptedWorker(t *testing.T, rec *scriptedReconciler, resync time.Duration) *worker {
	t.Helper()
	rec.start = time.Now()
	w := startWorker(t.Context(), &worker{scope: scopeWeb, rec: rec, rt: noReplicas{}, log: slog.New(slog.DiscardHandler),
		st: newStatusBook("node-1", "", "fake", "test", time.Second, time.Now()), resync: resync})
	t.Cleanup(func() {
		if err := w.stopAndWait(); err != nil {
			t.Errorf("stop worker: %v", err)
		}
	})
	return w
}

// at lists reconciles of revision rev at the given seconds.
func at(rev uint64, seconds ...float64) []reconcileCall {
	var calls []reconcileCall
	for _, s := range seconds {
		calls = append(calls, reconcileCall{At: time.Duration(s * float64(time.Second)), Revision: rev})
	}
	return calls
}

func checkCalls(t *testing.T, rec *scriptedReconciler, want []reconcileCall) {
	t.Helper()
	if diff := cmp.Diff(want, rec.taken()); diff != "" {
		t.Errorf("reconciles (-want +got):\n%s", diff)
	}
}

func TestWorkerBacksOffFailingReconcilesAndResetsOnRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Calls 0-7 fail, 8 succeeds, and from 9 on the runtime is gone again.
		rec := &scriptedReconciler{reply: func(_ context.Context, n int, _ deploy.Desired) error {
			if n == 8 {
				return nil
			}
			return errUnreachable
		}}
		w := startScriptedWorker(t, rec, 10*time.Minute)
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 1, Spec: &events.Spec{Image: "web:1"}})

		time.Sleep(725 * time.Second)
		synctest.Wait()
		// Backoff doubles from 1s to its 30s cap; the success resets it, so
		// the next failure (at the resync after it) retries 1s later again.
		checkCalls(t, rec, at(1, 0, 1, 3, 7, 15, 31, 61, 91, 121, 721, 722, 724))
	})
}

func TestWorkerRetryNeverWaitsPastResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &scriptedReconciler{reply: func(context.Context, int, deploy.Desired) error { return errUnreachable }}
		w := startScriptedWorker(t, rec, 5*time.Second)
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 1, Spec: &events.Spec{Image: "web:1"}})

		time.Sleep(20 * time.Second)
		synctest.Wait()
		// 1s, 2s, 4s, then the backoff's 8s is cut to the 5s resync.
		checkCalls(t, rec, at(1, 0, 1, 3, 7, 12, 17))
	})
}

func TestWorkerCoalescesDriftHintsIntoOneReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &scriptedReconciler{reply: func(context.Context, int, deploy.Desired) error { return nil }}
		w := startScriptedWorker(t, rec, time.Hour)
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 1, Spec: &events.Spec{Image: "web:1"}})
		synctest.Wait()

		// A "docker rm -f" says die, then destroy: hints in a burst.
		w.drift()
		time.Sleep(200 * time.Millisecond)
		w.drift()
		time.Sleep(200 * time.Millisecond)
		w.drift()
		time.Sleep(driftDelay - time.Millisecond)
		synctest.Wait()
		checkCalls(t, rec, at(1, 0))

		time.Sleep(time.Millisecond)
		synctest.Wait()
		checkCalls(t, rec, at(1, 0, 0.9)) // one reconcile, driftDelay after the last hint

		time.Sleep(30 * time.Minute)
		synctest.Wait()
		checkCalls(t, rec, at(1, 0, 0.9))
	})
}

func TestWorkerNewSpecCancelsTheReconcileInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cancelled := make(chan error, 1)
		rec := &scriptedReconciler{reply: func(ctx context.Context, n int, _ deploy.Desired) error {
			if n > 0 {
				return nil
			}
			// A rollout that waits for health checks for a minute.
			select {
			case <-ctx.Done():
				cancelled <- ctx.Err()
				return ctx.Err()
			case <-time.After(time.Minute):
				return nil
			}
		}}
		w := startScriptedWorker(t, rec, time.Hour)
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 1, Spec: &events.Spec{Image: "web:1"}})
		time.Sleep(10 * time.Second)
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 2, Spec: &events.Spec{Image: "web:2"}})
		synctest.Wait()

		select {
		case err := <-cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("reconcile of revision 1 ended with %v, want it cancelled", err)
			}
		default:
			t.Error("reconcile of revision 1 was not cancelled by revision 2's new spec")
		}
		checkCalls(t, rec, append(at(1, 0), at(2, 10)...))
	})
}

func TestWorkerLetsANoOpRevisionWaitForTheReconcileInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &scriptedReconciler{reply: func(ctx context.Context, n int, _ deploy.Desired) error {
			if n > 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Minute):
				return nil
			}
		}}
		w := startScriptedWorker(t, rec, time.Hour)
		spec := &events.Spec{Image: "web:1"}
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 1, Spec: spec})
		time.Sleep(10 * time.Second)
		// A pause changes what balancers do, not what runs: the fold keeps
		// the spec pointer, and the rollout in flight finishes.
		w.setDesired(deploy.Desired{Scope: scopeWeb, Revision: 2, Spec: spec, Traffic: &events.Traffic{}})
		time.Sleep(time.Hour - time.Second)
		synctest.Wait()

		checkCalls(t, rec, append(at(1, 0), at(2, 60)...))
	})
}
