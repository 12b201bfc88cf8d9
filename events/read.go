package events

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Unreadable is a stored message that could not be decoded. Readers skip it
// and report it; they never apply it.
type Unreadable struct {
	Sequence uint64
	Subject  string
	Err      error
}

func (u Unreadable) Error() string {
	return fmt.Sprintf("skipped unreadable event at sequence %d on %s: %v", u.Sequence, u.Subject, u.Err)
}

// Read is a history read back from the store.
type Read struct {
	Events  []*Event
	Skipped []Unreadable
}

// ScopeHistory reads a scope's events in order. When upTo is not zero it
// stops after that revision.
func (s *Store) ScopeHistory(ctx context.Context, scope Scope, upTo uint64) (*Read, error) {
	r := &Read{}
	err := s.ScanScope(ctx, scope, upTo, func(e *Event) { r.Events = append(r.Events, e) }, func(u Unreadable) { r.Skipped = append(r.Skipped, u) })
	return r, err
}

// NodeHistory reads a node's drain/undrain events in order.
func (s *Store) NodeHistory(ctx context.Context, node string) (*Read, error) {
	r := &Read{}
	err := s.scanHistory(ctx, NodeFilter(node), 0, func(e *Event) { r.Events = append(r.Events, e) }, func(u Unreadable) { r.Skipped = append(r.Skipped, u) })
	return r, err
}

// ScanScope streams a scope's events in order to fn, and the messages it
// could not decode to skipped, without holding the history in memory.
// When upTo is not zero it stops after that revision.
func (s *Store) ScanScope(ctx context.Context, scope Scope, upTo uint64, fn func(*Event), skipped func(Unreadable)) error {
	return s.scanHistory(ctx, ScopeFilter(scope), upTo, fn, skipped)
}

func (s *Store) scanHistory(ctx context.Context, filter string, upTo uint64, fn func(*Event), skipped func(Unreadable)) error {
	head, err := s.head(ctx, filter)
	if err != nil {
		return fmt.Errorf("read head of %s: %w", filter, err)
	}
	if head.Sequence == 0 {
		return nil
	}
	// Decoding costs more than reading, so batches of messages are decoded
	// by workers while the next ones arrive; results are applied in order.
	dec := newOrderedDecoder(ctx, upTo, fn, skipped)
	err = s.scanMeta(ctx, s.events, []string{filter}, jetstream.DeliverAllPolicy, head.Sequence, func(m jetstream.Msg, meta *jetstream.MsgMetadata) bool {
		return dec.add(rawMsg{seq: meta.Sequence.Stream, subject: m.Subject(), data: m.Data()})
	})
	if derr := dec.close(); err == nil {
		err = derr
	}
	return err
}

// scan delivers the messages of st matching filters to fn, in order, until
// the message at lastSeq has been seen, fn returns false, or ctx ends. It
// reads through an ordered (ephemeral, flow-controlled) consumer.
func (s *Store) scan(ctx context.Context, st jetstream.Stream, filters []string, policy jetstream.DeliverPolicy, lastSeq uint64, fn func(jetstream.Msg) bool) error {
	return s.scanMeta(ctx, st, filters, policy, lastSeq, func(m jetstream.Msg, _ *jetstream.MsgMetadata) bool { return fn(m) })
}

// scanMeta is scan that also hands fn the message's metadata, which scan
// parses anyway: parsing it twice was a sixth of a rebuild's client CPU.
func (s *Store) scanMeta(ctx context.Context, st jetstream.Stream, filters []string, policy jetstream.DeliverPolicy, lastSeq uint64, fn func(jetstream.Msg, *jetstream.MsgMetadata) bool) error {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  policy,
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", strings.Join(filters, ","), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("read %s: %w", strings.Join(filters, ","), err)
	}
	defer it.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-done:
		}
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s: %w", strings.Join(filters, ","), err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", strings.Join(filters, ","), err)
		}
		if !fn(m, meta) || meta.Sequence.Stream >= lastSeq || meta.NumPending == 0 {
			return nil
		}
	}
}

// ScopeInfo is one scope known to the store.
type ScopeInfo struct {
	Scope    Scope
	Revision uint64
}

// Scopes lists every scope with at least one event, sorted by name.
func (s *Store) Scopes(ctx context.Context) ([]ScopeInfo, error) {
	counts, err := s.subjectCounts(ctx, s.events, AllScopesFilter)
	if err != nil {
		return nil, err
	}
	revs := make(map[Scope]uint64)
	for subj, n := range counts {
		sc, ok := ScopeFromSubject(subj)
		if !ok {
			continue
		}
		revs[sc] += n
	}
	out := make([]ScopeInfo, 0, len(revs))
	for sc, n := range revs {
		out = append(out, ScopeInfo{Scope: sc, Revision: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope.String() < out[j].Scope.String() })
	return out, nil
}

// subjectCounts returns message counts per subject matching filter.
func (s *Store) subjectCounts(ctx context.Context, st jetstream.Stream, filter string) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("list subjects %s: %w", filter, err)
	}
	return info.State.Subjects, nil
}

// latest reads the last message of every subject matching filter. It
// stops when the consumer has nothing pending, never at a last sequence
// taken beforehand: a last-per-subject read delivers in sequence order, so
// a subject written after that snapshot comes after the snapshot's last
// sequence, and stopping there would lose it.
func (s *Store) latest(ctx context.Context, st jetstream.Stream, filter string, fn func(jetstream.Msg)) error {
	counts, err := s.subjectCounts(ctx, st, filter)
	if err != nil || len(counts) == 0 {
		return err
	}
	return s.scan(ctx, st, []string{filter}, jetstream.DeliverLastPerSubjectPolicy, math.MaxUint64, func(m jetstream.Msg) bool {
		fn(m)
		return true
	})
}

// NodeStatuses returns the latest status of every node that reported one.
// Unreadable reports are skipped.
func (s *Store) NodeStatuses(ctx context.Context) ([]*NodeStatus, error) {
	byNode := make(map[string]*NodeStatus)
	err := s.latest(ctx, s.reports, AllStatusFilter, func(m jetstream.Msg) {
		st, err := DecodeNodeStatus(m.Data())
		if err != nil {
			s.log.Warn("skipping unreadable node status", "subject", m.Subject(), "err", err)
			return
		}
		byNode[st.Node] = st
	})
	if err != nil {
		return nil, err
	}
	out := make([]*NodeStatus, 0, len(byNode))
	for _, st := range byNode {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// BackendReports returns the latest backends report of every node for scope.
func (s *Store) BackendReports(ctx context.Context, scope Scope) ([]*BackendsReport, error) {
	var out []*BackendsReport
	err := s.latest(ctx, s.backends, BackendsFilter(scope), func(m jetstream.Msg) {
		r, err := DecodeBackendsReport(m.Data())
		if err != nil {
			s.log.Warn("skipping unreadable backends report", "subject", m.Subject(), "err", err)
			return
		}
		out = append(out, r)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, err
}

// PublishBackends stores a node's backends report for a scope.
func (s *Store) PublishBackends(ctx context.Context, r *BackendsReport) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return s.publishReport(ctx, BackendsSubject(r.Scope, r.Node), r)
}

// PublishStatus stores a node's status heartbeat.
func (s *Store) PublishStatus(ctx context.Context, st *NodeStatus) error {
	if err := st.Validate(); err != nil {
		return err
	}
	return s.publishReport(ctx, StatusSubject(st.Node), st)
}

func (s *Store) publishReport(ctx context.Context, subject string, v any) error {
	data, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.js.Publish(ctx, subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// ErrNotFound is returned for a scope with no events.
var ErrNotFound = errors.New("not found")
