package deploy

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Failure is a rollout that did not complete. The reconciler does not try
// the same scope, revision and spec hash again until RetryAt, so a broken
// image or a failing health check does not become a hot loop of starts.
// A new revision (even one with the same spec) is always tried.
type Failure struct {
	Scope    events.Scope `json:"scope"`
	Revision uint64       `json:"revision"`
	SpecHash string       `json:"spec_hash"`
	Reason   string       `json:"reason"`
	Time     time.Time    `json:"time"`
	Attempts int          `json:"attempts"`
	RetryAt  time.Time    `json:"retry_at"`
}

// failures remembers the last failure per scope.
type failures struct {
	mu sync.Mutex
	m  map[events.Scope]Failure
}

// held returns the failure that holds back (scope, rev, hash) at now.
func (f *failures) held(scope events.Scope, rev uint64, hash string, now time.Time) (Failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[scope]
	if !ok || fl.Revision != rev || fl.SpecHash != hash || !now.Before(fl.RetryAt) {
		return Failure{}, false
	}
	return fl, true
}

// record stores a failure and reports whether it is news: a first failure
// or a different reason, worth a log line at warning level.
func (f *failures) record(fl Failure, backoff func(attempts int) time.Duration) (Failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[events.Scope]Failure{}
	}
	prev, ok := f.m[fl.Scope]
	fl.Attempts = 1
	if ok && prev.Revision == fl.Revision && prev.SpecHash == fl.SpecHash {
		fl.Attempts = prev.Attempts + 1
	}
	fl.RetryAt = fl.Time.Add(backoff(fl.Attempts))
	f.m[fl.Scope] = fl
	return fl, !ok || prev.Reason != fl.Reason
}

func (f *failures) clear(scope events.Scope) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, scope)
}

func (f *failures) list() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.m))
	slices.SortFunc(out, func(a, b Failure) int { return compareScope(a.Scope, b.Scope) })
	return out
}

func (f *failures) restore(fs []Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[events.Scope]Failure{}
	}
	for _, fl := range fs {
		f.m[fl.Scope] = fl
	}
}

func compareScope(a, b events.Scope) int { return cmp.Compare(a.String(), b.String()) }

// Failures returns the remembered rollout failures, one per scope, so the
// caller can report or persist them.
func (r *Reconciler) Failures() []Failure { return r.failures.list() }

// RestoreFailures loads failures persisted by an earlier run, so a restart
// does not retry a failed spec at once.
func (r *Reconciler) RestoreFailures(fs []Failure) { r.failures.restore(fs) }

// ForgetFailure lets the next reconcile of scope retry at once, e.g. when
// an operator asks for it.
func (r *Reconciler) ForgetFailure(scope events.Scope) { r.failures.clear(scope) }

func (r *Reconciler) backoff(attempts int) time.Duration {
	d := r.cfg.RetryBackoff
	for i := 1; i < attempts && d < r.cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxRetryBackoff)
}
