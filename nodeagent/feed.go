package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// Consumer tuning. The heartbeat is short so that a deleted consumer (which
// the server does not announce when no pull is pending) is noticed within
// seconds, not the default 30 s.
const (
	batchMax       = 256
	batchLinger    = 20 * time.Millisecond
	pullExpiry     = 10 * time.Second
	pullHeartbeat  = 2 * time.Second
	commitRetry    = time.Second
	sessionBackoff = 5 * time.Second
)

var (
	errConsumerGone = errors.New("consumer was deleted")
	errResubscribe  = errors.New("scopes changed")
)

// feed owns the book and the durable consumer: it folds each event,
// writes the reference file, acks, and then hands the changes to the
// workers. Nothing is acked before it is on disk.
type feed struct {
	a       *Agent
	book    *book
	path    string
	log     *slog.Logger
	reload  chan reloadReq
	persist chan struct{} // cap 1: write the reference file soon

	dirty     bool                  // the book changed since the last write
	notify    map[events.Scope]bool // scopes whose desired state changed
	nodeDirty bool                  // the drain standing changed
	lastErr   string
}

type reloadReq struct {
	scopes []events.Scope
	done   chan struct{}
}

func (f *feed) consumerName() string { return "agent-" + f.book.node }

// requestPersist asks the feed to write the reference file, e.g. because
// the reconciler's remembered failures changed.
func (f *feed) requestPersist() {
	select {
	case f.persist <- struct{}{}:
	default:
	}
}

func (f *feed) filters() []string {
	var out []string
	for _, sc := range f.book.scopeList() {
		out = append(out, events.ScopeFilter(sc))
	}
	return append(out, events.NodeFilter(f.book.node))
}

// run waits for the store, then keeps a consumer session going until ctx
// ends. Reloads are served both before and after the connection.
func (f *feed) run(ctx context.Context, stores <-chan *events.Store) {
	var store *events.Store
	for store == nil {
		select {
		case <-ctx.Done():
			return
		case store = <-stores:
		case req := <-f.reload:
			f.applyReload(req)
		}
	}
	for {
		err := f.session(ctx, store)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errResubscribe) || errors.Is(err, errConsumerGone) {
			if errors.Is(err, errConsumerGone) {
				f.log.Warn("durable consumer is gone; recreating it from the reference file's sequence", "consumer", f.consumerName(), "resume_after", f.book.seq)
			}
			continue
		}
		if msg := err.Error(); msg != f.lastErr {
			f.log.Warn("event feed interrupted; retrying", "err", err)
			f.lastErr = msg
		}
		select {
		case <-ctx.Done():
			return
		case req := <-f.reload:
			f.applyReload(req)
		case <-time.After(sessionBackoff):
		}
	}
}

// session creates (or reuses) the consumer and folds what it delivers
// until the consumer is gone, the scopes change or ctx ends.
func (f *feed) session(ctx context.Context, store *events.Store) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cons, err := f.consumer(sctx, store.JetStream())
	if err != nil {
		return err
	}
	f.lastErr = ""
	if ci := cons.CachedInfo(); ci.NumPending == 0 && ci.NumAckPending == 0 {
		f.caughtUp() // nothing to read: what the book holds is the whole story
	}
	if !f.commit(nil) {
		return errors.New("cannot write the reference file")
	}
	stopScores := f.a.readScores(sctx, store, f.book.scopeList())
	defer stopScores()

	msgs := make(chan jetstream.Msg)
	errs := make(chan error, 8)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-sctx.Done():
		}
	},
		jetstream.PullMaxMessages(batchMax), jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", f.consumerName(), err)
	}
	defer cc.Stop()

	var batch []jetstream.Msg
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		select {
		case <-ctx.Done():
			f.commit(batch)
			return ctx.Err()
		case m := <-msgs:
			meta, err := m.Metadata()
			if err != nil {
				f.log.Warn("message without metadata; skipping", "subject", m.Subject(), "err", err)
				continue
			}
			f.fold(meta.Sequence.Stream, m.Subject(), m.Data())
			batch = append(batch, m)
			if meta.NumPending == 0 {
				f.caughtUp()
			}
			if meta.NumPending == 0 || len(batch) >= batchMax {
				if f.commit(batch) {
					batch = nil
				} else {
					linger.Reset(commitRetry)
				}
				continue
			}
			linger.Reset(batchLinger)
		case <-linger.C:
			if f.commit(batch) {
				batch = nil
			} else {
				linger.Reset(commitRetry)
			}
		case err := <-errs:
			if f.gone(sctx, cons, err) {
				f.commit(batch)
				return errConsumerGone
			}
			f.log.Debug("consumer notice", "err", err)
		case req := <-f.reload:
			f.commit(batch)
			f.applyReload(req)
			return errResubscribe
		case <-f.persist:
			f.dirty = true
			if f.commit(batch) {
				batch = nil
			}
		}
	}
}

// consumer returns the node's durable consumer positioned right after the
// reference file's sequence. An existing consumer is reused only when it
// agrees exactly (same filters, acked up to that sequence, nothing in
// flight); otherwise the reference file wins and the consumer is
// recreated. A book that does not hold every scope from its start replays
// the stream from the beginning; revisions deduplicate what it holds.
func (f *feed) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.Stream(cctx, events.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.EventsStream, err)
	}
	name, filters := f.consumerName(), f.filters()
	start := uint64(1)
	if f.book.complete() {
		start = f.book.seq + 1
	}
	c, err := stream.Consumer(cctx, name)
	switch {
	case err == nil:
		ci := c.CachedInfo()
		if start > 1 && ci.Config.MemoryStorage && sameSet(consumerFilters(ci.Config), filters) && ci.AckFloor.Stream == start-1 && ci.NumAckPending == 0 {
			return c, nil
		}
		f.log.Info("recreating durable consumer from the reference file", "consumer", name,
			"ack_floor", ci.AckFloor.Stream, "in_flight", ci.NumAckPending, "resume_at", start)
		if err := stream.DeleteConsumer(cctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s: %w", name, err)
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("look up consumer %s: %w", name, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "hoist agent of node " + f.book.node,
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxAckPending:  4 * batchMax,
		// The consumer's state stays in the server's memory: the reference
		// file, not the ack floor, says where the agent resumes, and a
		// consumer lost with a server restart is recreated from it. On
		// disk, every ack rewrote a state file per consumer: 10-20x the
		// server's CPU per delivery (docs/decisions.md).
		MemoryStorage: true,
	}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	c, err = stream.CreateConsumer(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	if start == 1 {
		f.book.markComplete()
		f.dirty = true
	}
	f.log.Debug("consumer ready", "consumer", name, "start", start, "filters", filters)
	return c, nil
}

// gone reports whether a consume error means the consumer no longer
// exists. A deletion while no pull is pending shows only as missed
// heartbeats, so those are checked against the server.
func (f *feed) gone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		return true
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, ierr := cons.Info(ictx)
		return errors.Is(ierr, jetstream.ErrConsumerNotFound)
	}
	return false
}

// fold applies one message to the book and records what to report.
func (f *feed) fold(seq uint64, subject string, data []byte) {
	res := f.book.apply(seq, subject, data)
	f.dirty = true
	switch {
	case errors.Is(res.skipped, errDuplicate):
		f.log.Debug("event already applied", "seq", seq, "subject", subject)
	case res.skipped != nil:
		f.log.Warn("skipping an event that cannot be applied", "seq", seq, "subject", subject, "err", res.skipped)
		f.a.st.setEventError(res.scope, res.skipped)
	case res.node:
		f.nodeDirty = true
	case res.changed:
		f.notify[res.scope] = true
		f.a.st.clearEventError(res.scope)
		if f.a.opts.OnFolded != nil {
			if l := f.book.scopes[res.scope]; l != nil && l.synced {
				f.a.opts.OnFolded(res.scope, l.hist.Revision())
			}
		}
	}
}

// caughtUp marks every history as read to the end of the stream: from now
// on the workers may act on it.
func (f *feed) caughtUp() {
	for _, sc := range f.book.markSynced() {
		f.notify[sc] = true
		f.dirty = true
	}
	if !f.nodeDirty && f.book.nodeSt.Synced {
		f.nodeDirty = true
	}
}

// commit writes the reference file, acks batch and then hands the changes
// on. It returns false when the file could not be written: nothing is
// acked then, and the caller retries.
func (f *feed) commit(batch []jetstream.Msg) bool {
	if f.dirty {
		ref := f.book.reference(f.a.rec.Failures(), f.a.now())
		if err := writeReference(f.path, ref); err != nil {
			f.a.st.setNodeError(errReference, fmt.Sprintf("cannot write the reference file: %v", err))
			f.log.Error("cannot write the reference file; not acking", "path", f.path, "err", err)
			return false
		}
		f.a.st.setNodeError(errReference, "")
		f.dirty = false
	}
	for _, m := range batch {
		if err := m.Ack(); err != nil {
			f.log.Debug("ack", "subject", m.Subject(), "err", err) // redelivered, then deduplicated
		}
	}
	for sc := range f.notify {
		if d, ok := f.book.desired(sc); ok {
			f.a.deliver(d)
			if f.a.opts.OnApplied != nil {
				f.a.opts.OnApplied(sc, d.Revision)
			}
		}
	}
	clear(f.notify)
	if f.nodeDirty && f.book.nodeSt.Synced {
		f.a.st.setDrained(f.book.nodeSt.Drained, f.book.nodeSt.Reason)
		f.nodeDirty = false
	}
	return true
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
	f.a.setScopes(req.scopes)
}

func consumerFilters(cfg jetstream.ConsumerConfig) []string {
	if cfg.FilterSubject != "" {
		return []string{cfg.FilterSubject}
	}
	return cfg.FilterSubjects
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
