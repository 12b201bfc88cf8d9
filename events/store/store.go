package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/backoff"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Store is the event log on JetStream: it sets up the streams, appends
// events conditionally and idempotently, and reads histories back. It is
// the only reader of the log: everything else asks it for Records, and
// never builds consumers or parses subjects itself.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	denials *denials

	// heads caches the head each history had after this store's last
	// append to it, so a publisher appending in a row pays one round trip
	// per event. A stale entry only makes the conditional publish fail,
	// after which the head is read from the server.
	mu    sync.Mutex
	heads map[string]events.Head
}

// Options tune stream setup. The zero value is the production default.
type Options struct {
	// Replicas is the stream replication factor (1 for a single server,
	// 3 for a three-node cluster). 0 keeps an existing stream's factor (a
	// one-shot command must not scale a cluster's streams down) and creates
	// missing streams with 1.
	Replicas int
	// ScoreHistory is how many scores are kept per backend.
	ScoreHistory int64
	// ReportsMaxAge drops the status reports of nodes that went silent.
	ReportsMaxAge time.Duration
	// LeaseTTL is how long a lease of the leases bucket lasts unrenewed
	// (default defaultLeaseTTL); its holders renew at a third of it.
	LeaseTTL time.Duration
	Logger   *slog.Logger
}

// Defaults for Options.
const (
	DefaultScoreHistory  = 16
	DefaultReportsMaxAge = 24 * time.Hour
	duplicateWindow      = 2 * time.Minute
	// MaxConsumers is set on every stream: nats-server (2.12+) otherwise
	// caps a stream at 1,000 consumers, which the readers of a large fleet
	// reach. A stream limit of -1 does not lift the server's default, a
	// positive one does.
	MaxConsumers = 1_000_000
	// requestTimeout bounds one JetStream API request or publish.
	requestTimeout = 5 * time.Second
)

// ErrNoStreams says hoist's streams do not exist and this credential may
// not create them.
var ErrNoStreams = errors.New("hoist's streams are not set up")

// Open checks the server and creates or updates hoist's streams when
// the credential may (an admin, hoist server, hoist dev); other roles use
// the streams as they are. It is idempotent: every process that needs the
// store calls it at start.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	if err := checkServerVersion(nc.ConnectedServerVersion()); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Store{nc: nc, js: js, log: opts.Logger, denials: watchDenials(nc), heads: make(map[string]events.Head)}
	// A server that knows it has no leader says so at once; without this
	// question a command on the minority side of a partition waits for a
	// stream request to time out, or fails later on a read.
	if err := s.leaderless(ctx); err != nil {
		return nil, err
	}
	err = s.setup(ctx, opts)
	switch {
	case errors.Is(err, ErrPermission):
		s.log.Debug("not allowed to set up the streams; using them as they are", "err", err)
	case err != nil:
		return nil, err
	}
	return s, nil
}

// leaderless asks the server for its JetStream account info (every role
// may) and returns ErrNoQuorum if JetStream has no leader there. Any other
// outcome, an answer or none, is left to the requests that follow.
func (s *Store) leaderless(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.js.AccountInfo(ctx); noQuorum(err) != err {
		return noQuorum(err)
	}
	return nil
}

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
	// Head, when set, is the head the caller read (with ScopeHistory or
	// NodeHistory) and decided on: the append goes on top of it or fails
	// with a ConflictError, and is never retried on another head.
	Head *events.Head
}

// MaxRaces bounds the attempts of an append that keeps losing the race for
// a history's head to other publishers, and RaceBackoff is the pause
// between them (full jitter, so racers spread out). Exactly one layer
// retries a lost race, so the two never multiply: Append itself for an
// event that does not depend on the head (no ExpectRevision, no Head), and
// change.AppendOnHead for one that must be built again on the new head,
// which it passes as Head, so that Append reports the conflict instead.
const MaxRaces = 25

// RaceBackoff returns the pause between attempts after a lost race.
func RaceBackoff() *backoff.Backoff { return backoff.Full(5*time.Millisecond, 250*time.Millisecond) }

// Append stores e as the next event of its history and returns it with its
// revision, id and time filled in.
//
// A scope or node event's revision is its position in its history: the
// append is conditional on the history's last stream sequence, so it lands
// exactly on top of the head it was numbered against, and two concurrent
// publishers never both win (the loser gets a ConflictError, or without
// ExpectRevision and Head, retries on the new head). Every append carries
// e.ID as Nats-Msg-Id, so a publish retried after a lost ack is stored
// once. Score events carry no revision.
func (s *Store) Append(ctx context.Context, e *events.Event, opts AppendOptions) (*events.Event, error) {
	ev := *e
	if ev.ID == "" {
		ev.ID = nuid.Next()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	ev.Schema = events.SchemaVersion
	if ev.Data != nil && ev.Kind == "" {
		ev.Kind = ev.Data.Kind()
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if ev.Kind == events.KindBackendScored {
		return s.appendScore(ctx, &ev)
	}
	if err := events.ValidateActor(ev.Actor); err != nil {
		return nil, err
	}

	subject, filter, name := events.ScopeSubject(ev.Scope, ev.Kind, ev.Actor), events.ScopeFilter(ev.Scope), ev.Scope.String()
	if ev.Kind.IsNodeKind() {
		subject, filter, name = events.NodeSubject(ev.Node, ev.Kind, ev.Actor), events.NodeFilter(ev.Node), ev.Node
	}
	conditional := opts.ExpectRevision != nil || opts.Head != nil
	pause := RaceBackoff()
	for attempt := 1; ; attempt++ {
		var (
			head   events.Head
			cached bool
			err    error
		)
		switch {
		case opts.Head != nil:
			head = *opts.Head
		default:
			if head, cached = s.cachedHead(filter); !cached {
				if head, err = s.head(ctx, filter); err != nil {
					return nil, fmt.Errorf("read head of %s: %w", name, unanswered(noQuorum(err)))
				}
			}
		}
		if opts.ExpectRevision != nil && *opts.ExpectRevision != head.Revision {
			if cached { // the cache may be behind: ask the server
				s.forgetHead(filter)
				continue
			}
			return nil, &ConflictError{Subject: name, Expected: *opts.ExpectRevision, Actual: head.Revision}
		}
		ev.Revision = head.Revision + 1
		ack, err := s.publish(ctx, subject, &ev, jetstream.WithExpectLastSequenceForSubject(head.Sequence, filter))
		switch {
		case err == nil:
			if ack.Duplicate {
				// A resend of an event stored before, perhaps on an
				// earlier head: it holds the revision of its position.
				s.log.Debug("append was a retry of a stored event", "id", ev.ID, "seq", ack.Sequence)
				s.forgetHead(filter)
				rev, err := s.positionOf(ctx, filter, ack.Sequence, ev.ID)
				if err != nil {
					return nil, fmt.Errorf("append to %s: %w", name, err)
				}
				ev.Revision = rev
				return &ev, nil
			}
			s.rememberHead(filter, events.Head{Revision: ev.Revision, Sequence: ack.Sequence})
			return &ev, nil
		case isWrongLastSequence(err):
			s.forgetHead(filter)
			// The server checks the expectation before the Msg-Id: a resend
			// after a lost ack fails here although the first send landed.
			if next, ok, rerr := s.messageAfter(ctx, filter, head.Sequence); rerr == nil && ok && next.id == ev.ID {
				s.log.Debug("append was stored before its ack was lost", "id", ev.ID, "seq", next.seq)
				s.rememberHead(filter, events.Head{Revision: ev.Revision, Sequence: next.seq})
				return &ev, nil
			}
			if cached { // our cached head was stale, not necessarily a lost race
				continue
			}
			if conditional {
				latest, herr := s.head(ctx, filter)
				if herr != nil {
					latest = head
				}
				want := head.Revision
				if opts.ExpectRevision != nil {
					want = *opts.ExpectRevision
				}
				return nil, &ConflictError{Subject: name, Expected: want, Actual: latest.Revision}
			}
			if attempt >= MaxRaces {
				return nil, fmt.Errorf("append to %s: lost %d races to other publishers; try again", name, attempt)
			}
			if !pause.Wait(ctx) {
				return nil, fmt.Errorf("append to %s: %w", name, ctx.Err())
			}
		default:
			s.forgetHead(filter)
			return nil, fmt.Errorf("append %s to %s: %w", ev.Kind, name, unanswered(noQuorum(err)))
		}
	}
}

func (s *Store) cachedHead(filter string) (events.Head, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[filter]
	return h, ok
}

func (s *Store) rememberHead(filter string, h events.Head) {
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

func (s *Store) appendScore(ctx context.Context, ev *events.Event) (*events.Event, error) {
	d := ev.Data.(*events.BackendScored)
	if _, err := s.publish(ctx, events.ScoreSubject(ev.Scope, d.Backend), ev); err != nil {
		return nil, fmt.Errorf("append score for %s: %w", ev.Scope, err)
	}
	return ev, nil
}

// publish sends one event, resending it with the same Msg-Id when the ack
// is lost (timeout, reconnect): the stream's duplicate window makes the
// resend a no-op if the first one was stored.
func (s *Store) publish(ctx context.Context, subject string, ev *events.Event, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	data, err := events.EncodeValidated(ev) // Append validated it
	if err != nil {
		return nil, err
	}
	opts = append(opts, jetstream.WithMsgID(ev.ID))
	return s.publishData(ctx, subject, data, opts...)
}

// publishData publishes data and waits for the ack, resending on a lost
// ack; a permission violation ends it at once.
func (s *Store) publishData(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	gctx, release := s.denials.guard(ctx, subject)
	defer release()
	msg := &nats.Msg{Subject: subject, Data: data}
	pause := backoff.New(50*time.Millisecond, time.Second)
	var leaderlessSince time.Time
	for {
		pctx, cancel := context.WithTimeout(gctx, requestTimeout)
		ack, err := s.js.PublishMsg(pctx, msg, opts...)
		cancel()
		if err != nil {
			err = noQuorum(denied(gctx, err))
		}
		// An unanswered publish is resent, as an election ends soon; a
		// server that goes on saying it has no leader for longer than an
		// election takes is on the minority side, and resending is futile.
		if err != nil && retryable(err) && ctx.Err() == nil {
			switch lerr := s.leaderless(gctx); {
			case lerr == nil:
				leaderlessSince = time.Time{}
			case leaderlessSince.IsZero():
				leaderlessSince = time.Now()
			case time.Since(leaderlessSince) > quorumGrace:
				return nil, fmt.Errorf("publish %s: %w", subject, lerr)
			}
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			if !s.streamsExist(ctx) {
				return nil, fmt.Errorf("%w: no stream takes %s; start hoist server, or run hoist auth init with admin credentials", ErrNoStreams, subject)
			}
		}
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return ack, err
		}
		s.log.Debug("publish not acknowledged, resending with the same id", "subject", subject, "err", err)
		if !pause.Wait(gctx) {
			return nil, denied(gctx, err)
		}
	}
}

// streamsExist asks whether the events stream is there, as far as this
// credential can tell: a denied question counts as yes.
func (s *Store) streamsExist(ctx context.Context) bool {
	_, err := s.count(ctx, events.EventsStream, events.AllNodesFilter)
	return !errors.Is(err, jetstream.ErrStreamNotFound)
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

// head reads where the history of filter stands: its last stream sequence,
// then how many messages it holds. Reading the sequence first makes the
// pair safe to append on: if a message arrived in between, the count is too
// high, but then the append, conditional on the sequence, fails and reads
// again.
func (s *Store) head(ctx context.Context, filter string) (events.Head, error) {
	last, ok, err := s.directLast(ctx, events.EventsStream, filter)
	if err != nil || !ok {
		return events.Head{}, err
	}
	n, err := s.count(ctx, events.EventsStream, filter)
	if err != nil {
		return events.Head{}, err
	}
	return events.Head{Revision: n, Sequence: last.Sequence}, nil
}

// ErrIDTaken says an event's id is already the Msg-Id of a message in
// another history: the stream deduplicates ids across all of them.
var ErrIDTaken = errors.New("the event id is already taken by another message")

// positionOf is the revision of the message at stream sequence seq in the
// history of filter, which must be the event with id: how many of the
// history's messages come up to it.
func (s *Store) positionOf(ctx context.Context, filter string, seq uint64, id string) (uint64, error) {
	var (
		n     uint64
		found bool
	)
	_, err := s.read(ctx, readSpec{stream: events.EventsStream, filter: filter}, func(m events.Message) bool {
		if m.Sequence > seq {
			return false
		}
		n++
		if m.Sequence == seq {
			e, derr := events.Decode(m.Data)
			found = derr == nil && e.ID == id
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("the event was stored before, at sequence %d, but its revision cannot be read: %w", seq, err)
	case !found:
		return 0, fmt.Errorf("%w (id %s, at sequence %d); nothing was published", ErrIDTaken, id, seq)
	}
	return n, nil
}

type storedID struct {
	seq uint64
	id  string
}

// messageAfter returns the id and sequence of the first message of filter
// after stream sequence seq.
func (s *Store) messageAfter(ctx context.Context, filter string, seq uint64) (storedID, bool, error) {
	var (
		out storedID
		ok  bool
	)
	_, err := s.read(ctx, readSpec{stream: events.EventsStream, filter: filter, from: seq + 1}, func(m events.Message) bool {
		out.seq, ok = m.Sequence, true
		if e, err := events.Decode(m.Data); err == nil {
			out.id = e.ID
		}
		return false
	})
	return out, ok, err
}

// ScopeHead returns the head of a scope's history.
func (s *Store) ScopeHead(ctx context.Context, scope events.Scope) (events.Head, error) {
	return s.head(ctx, events.ScopeFilter(scope))
}
