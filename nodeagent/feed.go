package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
	"github.com/hoist-dev/hoist/projector"
)

// Feed tuning.
const (
	batchMax       = 256
	batchLinger    = 20 * time.Millisecond
	commitRetry    = time.Second
	sessionBackoff = 5 * time.Second
)

var errResubscribe = errors.New("scopes changed")

// feed owns the book and reads the node's histories: it folds each
// message, writes the reference file, and then hands the changes to the
// workers. Nothing is acted on before it is on disk.
type feed struct {
	book *desiredBook
	path string
	log  *slog.Logger
	// status is where the feed reports what it read: errors, heads and
	// the drain standing.
	status  *statusBook
	hooks   feedHooks
	reload  chan reloadReq
	persist chan struct{} // cap 1: write the reference file soon

	dirty     bool                  // the book changed since the last write
	notify    map[events.Scope]bool // scopes whose desired state changed
	nodeDirty bool                  // the drain standing changed
	lastErr   string
	// writeFailures counts the reference file's failed writes in a row:
	// the first is logged, and the write that ends them.
	writeFailures int
	// rebuilding is set from a divergence until every history was read
	// again.
	rebuilding bool
}

// feedHooks are the feed's only ways into the rest of the agent, declared
// here so that what the feed may do there is written in one place.
type feedHooks struct {
	now func() time.Time
	// failures are the reconciler's remembered rollout failures, which the
	// reference file keeps.
	failures func() []deploy.Failure
	// deliver hands a scope's new desired state, and the keyring its
	// secrets open with (nil without secrets), to the scope's worker.
	deliver func(d deploy.Desired, ring *projector.Keyring)
	// setScopes makes the workers serve scopes, after a reload.
	setScopes func(scopes []events.Scope)
	// offerKey and nodeKey tell the keeper (secrets.go) a scope's folded
	// keyring and the key the node's history announces.
	offerKey func(scope events.Scope, revision uint64, ring *projector.Keyring, spec *events.Spec)
	nodeKey  func(public string)
	// offerAnalysis tells the analyst (analysis.go) a scope's canary, or
	// that it has none.
	offerAnalysis func(scope events.Scope, v canaryView, ok bool)
	// onFolded and onApplied are Options.OnFolded and OnApplied; either
	// may be nil.
	onFolded, onApplied func(scope events.Scope, revision uint64)
}

type reloadReq struct {
	scopes []events.Scope
	done   chan struct{}
}

// requestPersist asks the feed to write the reference file, e.g. because
// the reconciler's remembered failures changed.
func (f *feed) requestPersist() {
	select {
	case f.persist <- struct{}{}:
	default:
	}
}

// run waits for the store, then keeps a reading session going until ctx
// ends. Reloads are served both before and after the connection.
func (f *feed) run(ctx context.Context, stores <-chan *store.Store) {
	var st *store.Store
	for st == nil {
		select {
		case <-ctx.Done():
			return
		case st = <-stores:
		case req := <-f.reload:
			f.applyReload(req)
		}
	}
	for {
		err := f.session(ctx, st)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errResubscribe) {
			continue
		}
		if errors.Is(err, store.ErrDiverged) {
			f.diverged(err)
			continue
		}
		if msg := err.Error(); msg != f.lastErr {
			f.log.Error("cannot read the node's events; retrying", "err", err)
			f.lastErr = msg
		}
		f.status.setNodeError(errNATS, "desired state unreadable: "+err.Error())
		select {
		case <-ctx.Done():
			return
		case req := <-f.reload:
			f.applyReload(req)
		case <-time.After(sessionBackoff):
		}
	}
}

// feedItem is one message of a history, or the mark that a history was
// read to the end of the stream.
type feedItem struct {
	scope    events.Scope // zero for the node's own history
	msg      events.Message
	caughtUp bool
}

// session reads every scope's history and the node's own, each through its
// own stream reader starting right after what the book holds, and folds
// what they deliver until the scopes change, a read is refused or ctx ends.
func (f *feed) session(ctx context.Context, st *store.Store) error {
	readers := lifecycle.New(ctx, f.log, 0)
	defer readers.Stop() // a reader still running is logged by Stop
	sctx := readers.Context()

	items := make(chan feedItem, batchMax)
	refused := make(chan error, len(f.book.scopes)+1)
	follow := func(scope events.Scope, spec store.Follow) {
		name := "follow node " + f.book.node
		if !scope.IsZero() {
			name = "follow " + scope.String()
		}
		readers.Go(name, func(sctx context.Context) {
			send := func(it feedItem) {
				select {
				case items <- it:
				case <-sctx.Done():
				}
			}
			err := st.Follow(sctx, spec, func(m events.Message) { send(feedItem{scope: scope, msg: m}) },
				func() { send(feedItem{scope: scope, caughtUp: true}) })
			if err != nil && sctx.Err() == nil {
				refused <- err
			}
		})
	}
	for _, sc := range f.book.scopeList() {
		follow(sc, store.Follow{Stream: events.EventsStream, Filter: events.ScopeFilter(sc), After: f.book.after(sc)})
	}
	follow(events.Scope{}, store.Follow{Stream: events.EventsStream, Filter: events.NodeFilter(f.book.node), After: f.book.nodeAfter()})
	stopScores := readScores(sctx, st, f.book.scopeList(), f.status, f.log)
	defer stopScores()

	f.lastErr = ""
	f.status.setNodeError(errNATS, "")
	return f.consume(ctx, items, refused)
}

// consume folds what the readers deliver, and writes and hands it on in
// batches: at once for batchMax messages, for a history read to its end
// or for a change of traffic alone, else batchLinger after the last
// message, so a burst is one write. A write that fails is retried every
// commitRetry. It returns when ctx ends, on a reload (errResubscribe) or
// on a reader's refusal, writing what it folded first.
func (f *feed) consume(ctx context.Context, items <-chan feedItem, refused <-chan error) error {
	pending := 0 // folded, not yet written
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	flush := func() {
		if f.commit() {
			pending = 0
		} else {
			linger.Reset(commitRetry)
		}
	}
	for {
		select {
		case <-ctx.Done():
			f.commit()
			return ctx.Err()
		case it := <-items:
			if it.caughtUp {
				f.caughtUp(it.scope)
				flush()
				continue
			}
			trafficOnly := f.fold(it.msg)
			pending++
			if trafficOnly && len(items) == 0 {
				// A canary's shift, a pause or a maintenance page: what
				// balancers do changes, and they learn it from this
				// node's next report. Nothing waits to batch with it.
				flush()
				continue
			}
			if pending >= batchMax || len(items) == 0 {
				if pending >= batchMax {
					flush()
					continue
				}
				linger.Reset(batchLinger)
			}
		case <-linger.C:
			flush()
		case err := <-refused:
			f.commit()
			return err
		case req := <-f.reload:
			f.commit()
			f.applyReload(req)
			return errResubscribe
		case <-f.persist:
			f.dirty = true
			flush()
		}
	}
}

// fold applies one message to the book and records what to report. It
// returns true for an event that changes only what balancers do with the
// scope's requests.
func (f *feed) fold(m events.Message) (trafficOnly bool) {
	res := f.book.apply(m)
	switch {
	case errors.Is(res.skipped, errDuplicate):
		f.log.Debug("message already applied", "seq", m.Sequence, "subject", m.Subject)
		return false
	case res.skipped != nil:
		f.dirty = true // it holds its revision
		f.log.Warn("skipping a message that cannot be applied", "seq", m.Sequence, "subject", m.Subject, "err", res.skipped)
		f.status.setEventError(res.scope, res.skipped)
		if !res.scope.IsZero() {
			f.notify[res.scope] = true // the revision moved
		}
	case res.node:
		f.dirty, f.nodeDirty = true, true
		f.status.setNodeError(errEvent, "") // a good node event ends a rejected one's report
	case res.changed:
		f.dirty = true
		f.notify[res.scope] = true
		f.status.clearEventError(res.scope)
		if f.hooks.onFolded != nil {
			if l := f.book.scopes[res.scope]; l != nil && l.synced {
				f.hooks.onFolded(res.scope, l.hist.Revision())
			}
		}
		return res.kind == events.KindCanaryShifted || res.kind.IsTrafficKind()
	}
	return false
}

// caughtUp marks scope's history (the node's, for a zero scope) as read
// to the end of the stream: from now on the workers may act on it.
func (f *feed) caughtUp(scope events.Scope) {
	if scope.IsZero() {
		if !f.book.nodeSt.Synced {
			f.book.nodeSt.Synced = true
			f.dirty = true
		}
		f.nodeDirty = true
		f.rebuilt()
		return
	}
	if f.book.markSynced(scope) {
		f.dirty = true
	}
	f.notify[scope] = true
	f.rebuilt()
}

// commit writes the reference file and then hands the changes on. It
// returns false when the file could not be written: nothing is handed on
// then, and the caller retries.
func (f *feed) commit() bool {
	if f.dirty {
		ref := f.book.reference(f.hooks.failures(), f.hooks.now())
		if err := writeReference(f.path, ref); err != nil {
			f.status.setNodeError(errReference, fmt.Sprintf("cannot write the reference file: %v", err))
			if f.writeFailures++; f.writeFailures == 1 {
				f.log.Error("cannot write the reference file; not acting on new events until it can be, retrying every "+commitRetry.String(), "path", f.path, "err", err)
			}
			return false
		}
		if f.writeFailures > 0 {
			f.log.Info("wrote the reference file again; acting on new events", "path", f.path, "failed_writes", f.writeFailures)
			f.writeFailures = 0
		}
		f.status.setNodeError(errReference, "")
		f.dirty = false
	}
	for sc := range f.notify {
		if d, ok := f.book.desired(sc); ok {
			ring := f.book.keyring(sc)
			f.status.setHead(sc, f.book.after(sc))
			f.hooks.deliver(d, ring)
			if ring != nil {
				f.hooks.offerKey(sc, d.Revision, ring, d.Spec)
			}
			if f.hooks.onApplied != nil {
				f.hooks.onApplied(sc, d.Revision)
			}
		}
		v, ok := f.book.analysisView(sc)
		f.hooks.offerAnalysis(sc, v, ok)
	}
	clear(f.notify)
	if f.nodeDirty && f.book.nodeSt.Synced {
		f.status.setDrained(f.book.nodeSt.Drained, f.book.nodeSt.Reason)
		f.hooks.nodeKey(f.book.nodeSt.Key)
		f.nodeDirty = false
	}
	return true
}

// diverged makes the stream the truth again once it no longer holds what
// the book read (a server restored from an older backup, or replaced): the
// reference file is set aside, as a corrupt one is, the book starts empty,
// and every scope counts as unread until its history was read again, so
// nothing reports converged on the old reading and 'hoist wait' waits.
func (f *feed) diverged(err error) {
	msg := fmt.Sprintf("the stream no longer holds what this node read (%v); rebuilding the desired state from the stream, which is the truth", err)
	if aside, aerr := setAside(f.path, "diverged", f.hooks.now()); aerr == nil {
		msg += "; the old reference file is kept as " + aside
	}
	f.log.Error(msg)
	f.status.setNodeError(errDiverged, msg)
	f.status.forgetScopes()
	f.book = newDesiredBook(f.book.node, f.book.scopeList())
	f.dirty, f.rebuilding = true, true
	clear(f.notify)
}

// rebuilt ends a rebuild once every history was read to the end again.
func (f *feed) rebuilt() {
	if !f.rebuilding || !f.book.nodeSt.Synced {
		return
	}
	for _, l := range f.book.scopes {
		if !l.synced {
			return
		}
	}
	f.rebuilding = false
	f.status.setNodeError(errDiverged, "")
	f.log.Warn("rebuilt the desired state from the stream after it diverged; acting on it now")
}

// applyReload makes the book and the workers serve a new set of scopes.
func (f *feed) applyReload(req reloadReq) {
	defer close(req.done)
	before := f.book.scopeList()
	added := f.book.setScopes(req.scopes)
	for _, sc := range before {
		if !slices.Contains(req.scopes, sc) {
			f.log.Warn("scope dropped from the node config: its replicas are left running, untouched", "scope", sc)
		}
	}
	if len(added) > 0 {
		f.log.Info("scopes added: replaying their history", "scopes", added)
	}
	f.dirty = true
	f.hooks.setScopes(req.scopes)
}
