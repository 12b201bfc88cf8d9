package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// History is one scope's or node's history as stored: every message its
// filter matches, numbered and interpreted, accepted or rejected.
type History struct {
	Records []events.Record
	// Head is where the history stood when it was read: append on it.
	Head events.Head
}

// Events returns the accepted events, in order.
func (h *History) Events() []*events.Event {
	out := make([]*events.Event, 0, len(h.Records))
	for i := range h.Records {
		if h.Records[i].Err == nil {
			out = append(out, h.Records[i].Event)
		}
	}
	return out
}

// Rejected returns the rejected messages, in order.
func (h *History) Rejected() []events.Record {
	var out []events.Record
	for _, r := range h.Records {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// ScopeHistory reads a scope's history in order. When upTo is not zero it
// stops after that revision.
func (s *Store) ScopeHistory(ctx context.Context, scope events.Scope, upTo uint64) (*History, error) {
	return s.history(ctx, events.ScopeFilter(scope), upTo)
}

// NodeHistory reads a node's drain/undrain history in order.
func (s *Store) NodeHistory(ctx context.Context, node string) (*History, error) {
	return s.history(ctx, events.NodeFilter(node), 0)
}

func (s *Store) history(ctx context.Context, filter string, upTo uint64) (*History, error) {
	h := &History{}
	rd := events.NewReader()
	var batch []events.Message
	// flush interprets a batch on every core and numbers it in order. It
	// returns false once upTo is reached.
	flush := func() bool {
		recs := interpretAll(batch)
		batch = batch[:0]
		for _, rec := range recs {
			rec = rd.Number(rec)
			if rec.Duplicate {
				continue
			}
			h.Records = append(h.Records, rec)
			h.Head = events.Head{Revision: rec.Revision, Sequence: rec.Sequence}
			if upTo != 0 && rec.Revision >= upTo {
				return false
			}
		}
		return true
	}
	_, err := s.read(ctx, readSpec{stream: events.EventsStream, filter: filter}, func(m events.Message) bool {
		batch = append(batch, m)
		return len(batch) < interpretBatch || flush()
	})
	if err != nil {
		return nil, err
	}
	if len(batch) > 0 {
		flush()
	}
	return h, nil
}

// interpretBatch is how many messages a history read interprets at once.
const interpretBatch = 512

// interpretAll interprets msgs on every core, in place of their order; the
// goroutines are gone when it returns.
func interpretAll(msgs []events.Message) []events.Record {
	out := make([]events.Record, len(msgs))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(msgs)/64))
	if workers <= 1 {
		for i, m := range msgs {
			out[i] = events.Interpret(m)
		}
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(msgs) + workers - 1) / workers
	for lo := 0; lo < len(msgs); lo += chunk {
		hi := min(lo+chunk, len(msgs))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				out[i] = events.Interpret(msgs[i])
			}
		})
	}
	wg.Wait()
	return out
}

// Follow says what Store.Follow reads.
type Follow struct {
	Stream string
	Filter string
	// From is the first stream sequence wanted; 0 starts at the beginning.
	From uint64
	// LastPerSubject starts with the latest message of each subject.
	LastPerSubject bool
	// After, when its Sequence is set, is the last message of Filter the
	// caller already has (From is then ignored): the read goes on right
	// after it. In HOIST_EVENTS it first checks that the stream still holds
	// that very message; a stream that does not (restored from an older
	// backup, or replaced) ends the read with a *DivergedError.
	After events.Mark
}

// Holds reports whether stream still holds the message m of filter: the
// message at m.Sequence matches filter and, when m has a digest, its body
// has that digest. A server restored from an older copy may hold another
// message there, or none.
func (s *Store) Holds(ctx context.Context, stream, filter string, m events.Mark) (bool, error) {
	held := false
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := s.consume(cctx, readSpec{stream: stream, filter: filter, from: m.Sequence}, func(got events.Message) bool {
		held = got.Sequence == m.Sequence && (m.Digest == "" || events.Digest(got.Data) == m.Digest)
		return false
	}, cancel) // caught up before any message: the stream ends before m
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return false, err
	}
	return held, ctx.Err()
}

// ErrDiverged is matched by every DivergedError.
var ErrDiverged = errors.New("the stream diverged from what this reader has")

// DivergedError says the stream no longer holds the last message a reader
// had of a filter: it was restored from an older copy, or replaced, so
// what the reader folded is not the stream's history any more.
type DivergedError struct {
	Stream, Filter string
	Want           events.Mark
	// Got is the message the stream holds from Want.Sequence on; zero when
	// it ends before.
	Got events.Mark
}

func (e *DivergedError) Error() string {
	held := fmt.Sprintf("its first message from there is sequence %d, another one", e.Got.Sequence)
	switch {
	case e.Got.Sequence == 0:
		held = "it ends before that"
	case e.Got.Sequence == e.Want.Sequence:
		held = "it holds another message there"
	}
	return fmt.Sprintf("%s: %s of %s was read up to sequence %d, but %s (restored from an older backup, or replaced?)",
		ErrDiverged, e.Filter, e.Stream, e.Want.Sequence, held)
}

func (e *DivergedError) Is(target error) bool { return target == ErrDiverged }

// Follow hands fn every message f selects, in stream order, until ctx
// ends; caughtUp (if not nil) is called once, when the messages present at
// the start have been handed over. Give the messages of histories to a
// Reader to know what they mean. A consumer that breaks off is recreated
// after the last message handed over, so fn sees each message once, in
// order; it checks at every new consumer that the stream still holds the
// last message handed over. It returns ctx's error, a *PermissionError when
// the server refuses the read, or a *DivergedError.
func (s *Store) Follow(ctx context.Context, f Follow, fn func(events.Message), caughtUp func()) error {
	return s.follow(ctx, readSpec{stream: f.Stream, filter: f.Filter, from: f.From, lastPerSubject: f.LastPerSubject}, f.After, fn, caughtUp)
}

// ScopeInfo is one scope known to the store.
type ScopeInfo struct {
	Scope    events.Scope
	Revision uint64 // the head: how many messages the scope's history holds
}

// Scopes lists every scope matching pattern (client.env.solution, each
// token a literal or '*'; "" for all) with at least one message, sorted by
// name. A credential confined to some scopes may list those with its own
// pattern: the read's filter is in its subject.
func (s *Store) Scopes(ctx context.Context, pattern string) ([]ScopeInfo, error) {
	filter := events.AllScopesFilter
	if pattern != "" {
		filter = events.SubjectRoot + ".scope." + pattern + ".>"
	}
	revs := make(map[events.Scope]uint64)
	counts, err := s.subjectCounts(ctx, events.EventsStream, filter)
	switch {
	case errors.Is(err, ErrPermission):
		// Count what this credential may read, message by message.
		_, err = s.read(ctx, readSpec{stream: events.EventsStream, filter: filter, headersOnly: true}, func(m events.Message) bool {
			if a, _ := events.ParseSubject(m.Subject); a.Family == events.FamilyScope {
				revs[a.Scope]++
			}
			return true
		})
	case err == nil:
		for subj, n := range counts {
			if a, _ := events.ParseSubject(subj); a.Family == events.FamilyScope {
				revs[a.Scope] += n
			}
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]ScopeInfo, 0, len(revs))
	for sc, n := range revs {
		out = append(out, ScopeInfo{Scope: sc, Revision: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope.String() < out[j].Scope.String() })
	return out, nil
}

// subjectCounts returns message counts per subject matching filter. Only
// credentials allowed stream info may ask.
func (s *Store) subjectCounts(ctx context.Context, stream, filter string) (map[string]uint64, error) {
	gctx, release := s.denials.guard(ctx, "$JS.API.STREAM.INFO."+stream)
	defer release()
	tctx, cancel := context.WithTimeout(gctx, requestTimeout)
	defer cancel()
	st, err := s.js.Stream(tctx, stream)
	if err == nil {
		var info *jetstream.StreamInfo
		if info, err = st.Info(tctx, jetstream.WithSubjectFilter(filter)); err == nil {
			return info.State.Subjects, nil
		}
	}
	return nil, fmt.Errorf("list subjects %s: %w", filter, denied(gctx, err))
}

// latest hands fn the interpretation of every kept message matching
// filter, oldest first, so that the caller keeps the last accepted one of
// each subject: a rejected message last on a subject must not hide the
// valid one before it. It is for the bounded streams (a few messages per
// subject).
func (s *Store) latest(ctx context.Context, stream, filter string, fn func(events.Record)) error {
	_, err := s.read(ctx, readSpec{stream: stream, filter: filter}, func(m events.Message) bool {
		fn(events.Interpret(m))
		return true
	})
	return err
}

// NodeStatuses returns the latest status of every node for scope (every
// scope when scope is zero), merged per node. Rejected reports are handed
// to skipped, when it is not nil.
func (s *Store) NodeStatuses(ctx context.Context, scope events.Scope, skipped func(events.Record)) ([]*events.NodeStatus, error) {
	filter := events.AllStatusFilter
	if !scope.IsZero() {
		filter = events.StatusFilter(scope)
	}
	var reports []events.Record
	err := s.latest(ctx, events.ReportsStream, filter, func(r events.Record) {
		if r.Err != nil {
			if skipped != nil {
				skipped(r)
			}
			return
		}
		reports = append(reports, r)
	})
	if err != nil {
		return nil, err
	}
	return events.MergeStatuses(reports), nil
}

// BackendReports returns the latest accepted backends report of every node
// for scope.
func (s *Store) BackendReports(ctx context.Context, scope events.Scope) ([]*events.BackendsReport, error) {
	byNode := map[string]*events.BackendsReport{}
	err := s.latest(ctx, events.BackendsStream, events.BackendsFilter(scope), func(r events.Record) {
		if r.Err != nil {
			s.log.Debug("skipping a backends report", "err", r.Err)
			return
		}
		byNode[r.Node] = r.Backends
	})
	out := make([]*events.BackendsReport, 0, len(byNode))
	for _, r := range byNode {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, err
}

// PublishBackends stores a node's backends report for a scope.
func (s *Store) PublishBackends(ctx context.Context, r *events.BackendsReport) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return s.publishReport(ctx, events.BackendsSubject(r.Scope, r.Node), r)
}

// PublishStatus stores a node's status, one report per scope it serves:
// a reader of one scope never sees another's.
func (s *Store) PublishStatus(ctx context.Context, st *events.NodeStatus) error {
	if err := st.Validate(); err != nil {
		return err
	}
	for _, sc := range st.Scopes {
		one := *st
		one.Scopes = []events.ScopeStatus{sc}
		if err := s.publishReport(ctx, events.StatusSubject(st.Node, sc.Scope), &one); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) publishReport(ctx context.Context, subject string, v any) error {
	data, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := s.publishData(ctx, subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}
