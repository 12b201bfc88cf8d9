package events

import (
	"errors"
	"fmt"
	"time"
)

// Message is one stored message, as the store hands it to readers.
type Message struct {
	Stream   string
	Subject  string
	Sequence uint64
	Time     time.Time // when the server stored it
	Data     []byte
	// Copy says the message carries the headers of a copy of another
	// stored message (Nats-Stream, Nats-Sequence): what the server stores
	// when a client names this subject as the reply to a direct get.
	Copy bool
}

// MaxClockSkew is how far past the moment the server stored it a message
// may be dated. A later date would let one message outrank every later one
// (a score dated 9999-12-31) or look alive forever. It is generous, as for
// Kerberos, because hoist's own appends are dated by the publisher's clock:
// a publisher whose clock runs ahead by more would have its events rejected.
const MaxClockSkew = 5 * time.Minute

// ErrRejected is matched by every Rejection.
var ErrRejected = errors.New("rejected message")

// Rejection says why a stored message means nothing: it is skipped and
// reported by every reader alike, and in a history it still takes its
// revision, so that no message can freeze the history or make a later
// publish go unapplied.
type Rejection struct {
	Subject  string
	Sequence uint64
	Reason   error
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("rejected message at sequence %d on %s: %v", r.Sequence, r.Subject, r.Reason)
}

func (r *Rejection) Unwrap() error { return r.Reason }

// Is makes errors.Is(err, ErrRejected) true.
func (r *Rejection) Is(target error) bool { return target == ErrRejected }

// Record is what one stored message means: the one reading every reader
// uses (the CLI's fold and head, log, state, status, wait, agents,
// balancers). Get it from a Reader, which also numbers histories.
type Record struct {
	Message
	Address
	// Revision is the message's position in its history (scope or node
	// events), counting from 1. Every message a history's filter matches
	// takes one, accepted or not.
	Revision uint64
	// Duplicate says the reader has seen this message's history past this
	// sequence already: a replay, to ignore.
	Duplicate bool

	// What the message says, when it is accepted (Err is nil): Event for
	// scope, node and score events, Backends or Status for reports, Stats for request statistics.
	Event    *Event
	Backends *BackendsReport
	Status   *NodeStatus
	Stats    *RequestStats

	// Err is a *Rejection when the message is not accepted.
	Err error
}

// Accepted reports whether the message means anything.
func (r *Record) Accepted() bool { return r.Err == nil }

// Interpret decides what m says, except its revision (see Reader): it
// reads the subject, decodes the body and checks that the body agrees with
// the subject and is not dated in the future.
func Interpret(m Message) Record {
	addr, err := ParseSubject(m.Subject)
	r := Record{Message: m, Address: addr}
	switch {
	case err != nil:
	case m.Copy:
		err = ErrCopy
	default:
		err = r.decode()
	}
	if err != nil {
		r.Event, r.Backends, r.Status, r.Stats = nil, nil, nil, nil
		r.Err = &Rejection{Subject: m.Subject, Sequence: m.Sequence, Reason: err}
	}
	return r
}

func (r *Record) decode() error {
	switch r.Family {
	case FamilyScope, FamilyNode, FamilyScore:
		e, err := Decode(r.Data)
		if err != nil {
			return err
		}
		r.Event = e
		return r.checkEvent(e)
	case FamilyBackends:
		b, err := decodeBackendsReport(r.Data)
		if err != nil {
			return err
		}
		r.Backends = b
		if b.Scope != r.Scope || b.Node != r.Node {
			return fmt.Errorf("%w: the body is for scope %s on node %s, the subject for %s on %s", ErrDisagrees, b.Scope, b.Node, r.Scope, r.Node)
		}
		return r.checkTime(b.Time)
	case FamilyStatus:
		s, err := decodeNodeStatus(r.Data)
		if err != nil {
			return err
		}
		r.Status = s
		if s.Node != r.Node {
			return fmt.Errorf("%w: the body is node %s's status, the subject node %s's", ErrDisagrees, s.Node, r.Node)
		}
		if len(s.Scopes) != 1 || s.Scopes[0].Scope != r.Scope {
			return fmt.Errorf("%w: the body must report exactly scope %s", ErrDisagrees, r.Scope)
		}
		return r.checkTime(s.Time)
	case FamilyStats:
		s, err := DecodeRequestStats(r.Data)
		if err != nil {
			return err
		}
		r.Stats = s
		if s.Balancer != r.Balancer {
			return fmt.Errorf("%w: the body is balancer %s's statistics, the subject balancer %s's", ErrDisagrees, s.Balancer, r.Balancer)
		}
		return r.checkTime(s.Time)
	}
	return fmt.Errorf("subject %q is not a hoist subject", r.Subject)
}

// ErrCopy marks a stored copy of another message: a server reply that a
// client aimed at this subject, never a publish of its own.
var ErrCopy = errors.New("a copy of another stored message (a reply aimed at this subject), not a publish")

// ErrDisagrees marks a message whose body says something its subject does
// not: another scope, node, kind, backend or actor.
var ErrDisagrees = errors.New("the body disagrees with the subject")

func (r *Record) checkEvent(e *Event) error {
	if e.Kind != r.Kind {
		return fmt.Errorf("%w: a %s event on a %s subject", ErrDisagrees, e.Kind, r.Kind)
	}
	switch r.Family {
	case FamilyScope:
		if e.Scope != r.Scope {
			return fmt.Errorf("%w: the body is for scope %s, the subject for %s", ErrDisagrees, e.Scope, r.Scope)
		}
	case FamilyNode:
		if e.Node != r.Node {
			return fmt.Errorf("%w: the body is for node %s, the subject for %s", ErrDisagrees, e.Node, r.Node)
		}
	case FamilyScore:
		d := e.Data.(*BackendScored)
		if e.Scope != r.Scope || d.Backend != r.Backend {
			return fmt.Errorf("%w: the body scores %s in %s, the subject %s in %s", ErrDisagrees, d.Backend, e.Scope, r.Backend, r.Scope)
		}
	}
	if r.Actor != "" && e.Actor != r.Actor {
		return fmt.Errorf("%w: the body names actor %q, the subject %q", ErrDisagrees, e.Actor, r.Actor)
	}
	return r.checkTime(e.Time)
}

// ErrWrongRevision marks an event whose body claims another position in
// its history than the one it holds.
var ErrWrongRevision = errors.New("wrong revision")

// ErrFuture marks a message dated too far after it was stored.
var ErrFuture = errors.New("dated in the future")

func (r *Record) checkTime(t time.Time) error {
	if !r.Message.Time.IsZero() && t.After(r.Message.Time.Add(MaxClockSkew)) {
		return fmt.Errorf("%w: %s, but stored at %s", ErrFuture, t.UTC().Format(time.RFC3339), r.Message.Time.UTC().Format(time.RFC3339))
	}
	return nil
}

// Reader numbers the messages of every history it is given and interprets
// them: the one place that decides what a message means and which revision
// it is. Give it each history's messages in stream order, from the first;
// it keeps no more than each history's head.
type Reader struct {
	heads map[string]Head
}

// NewReader returns a Reader that has seen nothing.
func NewReader() *Reader { return &Reader{heads: make(map[string]Head)} }

// Read interprets m and, for a scope or node event, numbers it.
//
// A message at or below the sequence its history has reached is a
// Duplicate (a replay). Otherwise it takes the next revision, whatever it
// says; an event whose body claims another revision is rejected, as it was
// never appended at that position by hoist.
func (r *Reader) Read(m Message) Record {
	return r.Number(Interpret(m))
}

// Number is Read for a message already interpreted, so that the costly
// part can run on other goroutines; numbering itself must see each
// history's messages in order.
func (r *Reader) Number(rec Record) Record {
	m := rec.Message
	key := rec.History()
	if key == "" {
		return rec
	}
	h := r.heads[key]
	if m.Sequence <= h.Sequence {
		rec.Duplicate = true
		return rec
	}
	h.Revision++
	h.Sequence = m.Sequence
	r.heads[key] = h
	rec.Revision = h.Revision
	if rec.Err == nil && rec.Event.Revision != rec.Revision {
		claimed := rec.Event.Revision
		rec.Event = nil
		rec.Err = &Rejection{Subject: m.Subject, Sequence: m.Sequence,
			Reason: fmt.Errorf("%w: it claims revision %d, but it is revision %d of %s", ErrWrongRevision, claimed, h.Revision, key)}
	}
	return rec
}

// Head is where a history stands: its revision (how many messages it
// holds) and the stream sequence of its last message (0 for none).
type Head struct {
	Revision uint64
	Sequence uint64
}

// Head returns how far the reader has read history key (Address.History).
func (r *Reader) Head(key string) Head { return r.heads[key] }

// Restore sets how far history key was read, e.g. from a state file.
func (r *Reader) Restore(key string, h Head) { r.heads[key] = h }

// Forget drops what the reader knows of history key.
func (r *Reader) Forget(key string) { delete(r.heads, key) }
