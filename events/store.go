package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// RevisionHeader carries an event's revision, so a head can be read without
// decoding its body.
const RevisionHeader = "Hoist-Revision"

// Store is the event log on JetStream: it sets up the streams, appends
// events conditionally and idempotently, and reads histories back.
type Store struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	events   jetstream.Stream
	scores   jetstream.Stream
	backends jetstream.Stream
	reports  jetstream.Stream

	// heads caches the head each history had after this store's last
	// append to it, so a publisher appending in a row pays one round trip
	// per event. A stale entry only makes the conditional publish fail,
	// after which the head is read from the server.
	mu    sync.Mutex
	heads map[string]Head
}

// StoreOptions tune stream setup. The zero value is the production default.
type StoreOptions struct {
	// Replicas is the stream replication factor (1 for a single server,
	// 3 for a three-node cluster). 0 keeps an existing stream's factor (a
	// one-shot command must not scale a cluster's streams down) and creates
	// missing streams with 1.
	Replicas int
	// ScoreHistory is how many scores are kept per backend.
	ScoreHistory int64
	// ReportsMaxAge drops the status reports of nodes that went silent.
	ReportsMaxAge time.Duration
	Logger        *slog.Logger
}

// Defaults for StoreOptions.
const (
	DefaultScoreHistory  = 16
	DefaultReportsMaxAge = 24 * time.Hour
	duplicateWindow      = 2 * time.Minute
	// MaxConsumers is set on every stream: nats-server (2.12+) otherwise
	// caps a stream at 1,000 consumers, which one durable per agent plus
	// the readers (balancers, CLI reads, agents' score readers) reach at
	// about 1,000 nodes; agents past it cannot read their events. A stream
	// limit of -1 does not lift the server's default, a positive one does.
	MaxConsumers = 1_000_000
)

// OpenStore checks the server and creates or updates hoist's streams. It is
// idempotent: every process that needs the store calls it at start.
func OpenStore(ctx context.Context, nc *nats.Conn, opts StoreOptions) (*Store, error) {
	if err := CheckServerVersion(nc.ConnectedServerVersion()); err != nil {
		return nil, err
	}
	keepReplicas := opts.Replicas <= 0
	if keepReplicas {
		opts.Replicas = 1
	}
	if opts.ScoreHistory <= 0 {
		opts.ScoreHistory = DefaultScoreHistory
	}
	if opts.ReportsMaxAge <= 0 {
		opts.ReportsMaxAge = DefaultReportsMaxAge
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Store{nc: nc, js: js, log: opts.Logger, heads: make(map[string]Head)}

	// The config history is the source of truth: no limits (limit-based
	// eviction would ignore DenyDelete) and no way to delete or purge.
	s.events, err = ensureStream(ctx, js, keepReplicas, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "hoist config events: scope changes and node drains, kept forever",
		Subjects:    []string{subjectRoot + ".scope.*.*.*.*", subjectRoot + ".node.*.*"},
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  duplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	})
	if err != nil {
		return nil, err
	}
	s.scores, err = ensureStream(ctx, js, keepReplicas, jetstream.StreamConfig{
		Name:              ScoresStream,
		Description:       "hoist backend scores: a bounded history per backend",
		Subjects:          []string{subjectRoot + ".score.*.*.*.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		Duplicates:        duplicateWindow,
		MaxMsgsPerSubject: opts.ScoreHistory,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	})
	if err != nil {
		return nil, err
	}
	// Status first: stores made before HOIST_BACKENDS held backends here.
	s.reports, err = ensureStream(ctx, js, keepReplicas, jetstream.StreamConfig{
		Name:              ReportsStream,
		Description:       "hoist node heartbeats and status, with an age limit",
		Subjects:          []string{subjectRoot + ".status.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		MaxMsgsPerSubject: 4,
		MaxAge:            opts.ReportsMaxAge,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	})
	if err != nil {
		return nil, err
	}
	// Backend sets stay until their node replaces or withdraws them: an
	// age limit would silently drop static backends (hoist announce).
	s.backends, err = ensureStream(ctx, js, keepReplicas, jetstream.StreamConfig{
		Name:              BackendsStream,
		Description:       "hoist backends: the latest set per scope and node",
		Subjects:          []string{subjectRoot + ".backends.*.*.*.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		MaxMsgsPerSubject: 4,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// JetStream returns the JetStream context, for consumers that live in other
// packages (the agent's durable consumer, the balancer's feed).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Conn returns the NATS connection the store uses.
func (s *Store) Conn() *nats.Conn { return s.nc }

// ConflictError says a conditional append lost: the head was not what the
// publisher expected.
type ConflictError struct {
	Subject  string // scope or node
	Expected uint64
	Actual   uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("revision conflict on %s: expected revision %d, but the head is revision %d; nothing was published", e.Subject, e.Expected, e.Actual)
}

// AppendOptions make an append conditional.
type AppendOptions struct {
	// ExpectRevision, when set, makes the append fail with a ConflictError
	// unless the history's head is exactly this revision.
	ExpectRevision *uint64
}

// Head is the last event of a scope's or node's history.
type Head struct {
	Revision uint64
	Sequence uint64 // stream sequence, 0 when the history is empty
}

// Append stores e as the next event of its history and returns it with its
// revision, id and time filled in.
//
// Scope and node events get the next revision of their history: the append
// is conditional on the head read just before, so two concurrent publishers
// never both win (the loser gets a ConflictError). Without ExpectRevision,
// a lost race is retried on the new head. Every append carries e.ID as
// Nats-Msg-Id, so a publish retried after a lost ack is stored once.
// Score events carry no revision.
func (s *Store) Append(ctx context.Context, e *Event, opts AppendOptions) (*Event, error) {
	ev := *e
	if ev.ID == "" {
		ev.ID = nuid.Next()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	ev.Schema = SchemaVersion
	if ev.Data != nil && ev.Kind == "" {
		ev.Kind = ev.Data.Kind()
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if ev.Kind == KindBackendScored {
		return s.appendScore(ctx, &ev)
	}

	subject, filter, name := ScopeSubject(ev.Scope, ev.Kind), ScopeFilter(ev.Scope), ev.Scope.String()
	if ev.Kind.IsNodeKind() {
		subject, filter, name = NodeSubject(ev.Node, ev.Kind), NodeFilter(ev.Node), ev.Node
	}
	head, cached := s.cachedHead(filter)
	for attempt := 0; ; attempt++ {
		if !cached {
			var err error
			if head, err = s.head(ctx, filter); err != nil {
				return nil, fmt.Errorf("read head of %s: %w", name, err)
			}
		}
		if opts.ExpectRevision != nil && *opts.ExpectRevision != head.Revision {
			if cached { // the cache may be behind: ask the server
				cached = false
				continue
			}
			return nil, &ConflictError{Subject: name, Expected: *opts.ExpectRevision, Actual: head.Revision}
		}
		ev.Revision = head.Revision + 1
		ack, err := s.publish(ctx, subject, &ev,
			jetstream.WithExpectLastSequenceForSubject(head.Sequence, filter))
		switch {
		case err == nil:
			if ack.Duplicate {
				// A resend of an event stored before: report it as stored.
				s.log.Debug("append was a retry of a stored event", "id", ev.ID, "seq", ack.Sequence)
				if stored, err := s.storedEvent(ctx, ack.Sequence); err == nil {
					ev.Revision = stored.Revision
				}
				s.forgetHead(filter)
				return &ev, nil
			}
			s.rememberHead(filter, Head{Revision: ev.Revision, Sequence: ack.Sequence})
			return &ev, nil
		case isWrongLastSequence(err):
			s.forgetHead(filter)
			if cached { // our cached head was stale, not necessarily a lost race
				cached = false
				continue
			}
			if opts.ExpectRevision != nil {
				latest, herr := s.head(ctx, filter)
				if herr != nil {
					latest = head
				}
				return nil, &ConflictError{Subject: name, Expected: *opts.ExpectRevision, Actual: latest.Revision}
			}
			if attempt >= 50 {
				return nil, fmt.Errorf("append to %s: gave up after %d lost races", name, attempt+1)
			}
			continue // someone else appended first: take the new head
		default:
			s.forgetHead(filter)
			return nil, fmt.Errorf("append %s to %s: %w", ev.Kind, name, err)
		}
	}
}

func (s *Store) cachedHead(filter string) (Head, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[filter]
	return h, ok
}

func (s *Store) rememberHead(filter string, h Head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heads) > 10000 { // bound memory for long-lived publishers
		clear(s.heads)
	}
	s.heads[filter] = h
}

func (s *Store) forgetHead(filter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.heads, filter)
}

func (s *Store) storedEvent(ctx context.Context, seq uint64) (*Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := s.events.GetMsg(ctx, seq)
	if err != nil {
		return nil, err
	}
	return Decode(msg.Data)
}

func (s *Store) appendScore(ctx context.Context, ev *Event) (*Event, error) {
	d := ev.Data.(*BackendScored)
	if _, err := s.publish(ctx, ScoreSubject(ev.Scope, d.Backend), ev); err != nil {
		return nil, fmt.Errorf("append score for %s: %w", ev.Scope, err)
	}
	return ev, nil
}

// publish sends one event, resending it with the same Msg-Id when the ack
// is lost (timeout, reconnect): the stream's duplicate window makes the
// resend a no-op if the first one was stored.
func (s *Store) publish(ctx context.Context, subject string, ev *Event, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	data, err := encodeValid(ev) // Append validated it
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(RevisionHeader, strconv.FormatUint(ev.Revision, 10))
	opts = append(opts, jetstream.WithMsgID(ev.ID))
	backoff := 50 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ack, err := s.js.PublishMsg(pctx, msg, opts...)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return ack, err
		}
		s.log.Debug("publish not acknowledged, resending with the same id", "subject", subject, "id", ev.ID, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func retryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting)
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// head reads the last event matching filter.
func (s *Store) head(ctx context.Context, filter string) (Head, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := s.events.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, err
	}
	if rev, err := strconv.ParseUint(msg.Header.Get(RevisionHeader), 10, 64); err == nil {
		return Head{Revision: rev, Sequence: msg.Sequence}, nil
	}
	// The last message was not appended by hoist. Count revisions the way
	// every fold does (an event counts only at the next revision), so a
	// stray message cannot move the counter; the expectation stays on the
	// true last sequence so the next append still detects races.
	var rev uint64
	err = s.scan(ctx, s.events, []string{filter}, jetstream.DeliverAllPolicy, msg.Sequence, func(m jetstream.Msg) bool {
		if e, err := Decode(m.Data()); err == nil && e.Revision == rev+1 {
			rev = e.Revision
		}
		return true
	})
	if err != nil {
		return Head{}, err
	}
	return Head{Revision: rev, Sequence: msg.Sequence}, nil
}

// ScopeHead returns the head of a scope's history.
func (s *Store) ScopeHead(ctx context.Context, scope Scope) (Head, error) {
	return s.head(ctx, ScopeFilter(scope))
}
