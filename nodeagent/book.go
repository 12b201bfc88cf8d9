package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

// desiredBook is the agent's desired state: every configured scope's
// history and the node's drain standing, each with how far its history has
// been read. It is owned by one goroutine (the feed) and has no locks.
// What a message means, and which revision it is, the book leaves to its
// events.Reader: the same reading as every other reader's.
type desiredBook struct {
	node   string
	reader *events.Reader
	scopes map[events.Scope]*scopeLog
	nodeSt referenceNode
	// tails are the body of each history's last message read, by history
	// key; digests the digests a reference file gave for the ones not read
	// since. Together they let a read check that the stream still holds
	// the message the book stopped at (see store.Follow.After).
	tails   map[string][]byte
	digests map[string]string
}

type scopeLog struct {
	hist   *projector.History
	raw    []json.RawMessage // the applied events, as stored
	synced bool              // read to the end of the stream at least once
}

func newDesiredBook(node string, scopes []events.Scope) *desiredBook {
	b := &desiredBook{node: node, reader: events.NewReader(), scopes: map[events.Scope]*scopeLog{},
		tails: map[string][]byte{}, digests: map[string]string{}}
	b.setScopes(scopes)
	return b
}

func scopeKey(sc events.Scope) string {
	return events.Address{Family: events.FamilyScope, Scope: sc}.History()
}

func (b *desiredBook) nodeKey() string {
	return events.Address{Family: events.FamilyNode, Node: b.node}.History()
}

// setScopes makes the book hold exactly scopes: new ones start empty and
// unsynced, dropped ones are forgotten. It returns the scopes added.
func (b *desiredBook) setScopes(scopes []events.Scope) (added []events.Scope) {
	keep := map[events.Scope]bool{}
	for _, sc := range scopes {
		keep[sc] = true
		if b.scopes[sc] == nil {
			b.scopes[sc] = &scopeLog{hist: projector.NewHistory(sc)}
			b.forget(scopeKey(sc))
			added = append(added, sc)
		}
	}
	for sc := range b.scopes {
		if !keep[sc] {
			delete(b.scopes, sc)
			b.forget(scopeKey(sc))
		}
	}
	return added
}

func (b *desiredBook) forget(key string) {
	b.reader.Forget(key)
	delete(b.tails, key)
	delete(b.digests, key)
}

// bookFromReference rebuilds a book from a reference file, keeping only the
// configured scopes. Every stored event must decode and fold at the
// revision it claims: the file holds only events that did, so one that does
// not means the file cannot be trusted. The revisions between them are
// messages that changed nothing, and hold their place again.
func bookFromReference(ref *reference, scopes []events.Scope) (*desiredBook, error) {
	b := newDesiredBook(ref.Node, scopes)
	b.nodeSt = ref.NodeLog
	b.reader.Restore(b.nodeKey(), events.Head{Revision: ref.NodeLog.Revision, Sequence: ref.NodeLog.Sequence})
	b.digests[b.nodeKey()] = ref.NodeLog.Digest
	for name, stored := range ref.Scopes {
		sc, err := events.ParseScope(name)
		if err != nil {
			return nil, fmt.Errorf("%w: scope %q: %v", ErrCorruptReference, name, err)
		}
		l := b.scopes[sc]
		if l == nil {
			continue // no longer configured
		}
		for i, raw := range stored.Events {
			e, err := events.Decode(raw)
			if err == nil && (e.Scope != sc || e.Revision <= l.hist.Revision() || e.Revision > stored.Revision) {
				err = fmt.Errorf("revision %d of scope %s does not fit revisions %d-%d", e.Revision, e.Scope, l.hist.Revision()+1, stored.Revision)
			}
			if err == nil {
				l.holdUpTo(e.Revision - 1)
				err = l.hist.Apply(e)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: scope %s event %d: %v", ErrCorruptReference, sc, i+1, err)
			}
			l.raw = append(l.raw, raw)
		}
		l.holdUpTo(stored.Revision)
		l.synced = stored.Synced
		b.reader.Restore(scopeKey(sc), events.Head{Revision: stored.Revision, Sequence: stored.Sequence})
		b.digests[scopeKey(sc)] = stored.Digest
	}
	return b, nil
}

// errHeld stands for a message that changed nothing when it was read.
var errHeld = errors.New("changed nothing when it was first read")

// holdUpTo fills the history up to rev with revisions that change nothing.
func (l *scopeLog) holdUpTo(rev uint64) {
	sc := l.hist.State().Scope
	for r := l.hist.Revision() + 1; r <= rev; r++ {
		_ = l.hist.Take(events.Record{
			Address:  events.Address{Family: events.FamilyScope, Scope: sc},
			Revision: r,
			Err:      &events.Rejection{Reason: errHeld},
		})
	}
}

// reference returns the book as a reference file.
func (b *desiredBook) reference(failures []deploy.Failure, now time.Time) *reference {
	ref := &reference{
		Version:  referenceVersion,
		Node:     b.node,
		Written:  now.UTC(),
		Scopes:   make(map[string]*referenceLog, len(b.scopes)),
		NodeLog:  b.nodeSt,
		Failures: failures,
	}
	nm := b.mark(b.nodeKey())
	nh := b.reader.Head(b.nodeKey())
	ref.NodeLog.Revision, ref.NodeLog.Sequence, ref.NodeLog.Digest = nh.Revision, nh.Sequence, nm.Digest
	for sc, l := range b.scopes {
		h := b.reader.Head(scopeKey(sc))
		ref.Scopes[sc.String()] = &referenceLog{Revision: h.Revision, Sequence: h.Sequence, Digest: b.mark(scopeKey(sc)).Digest,
			Synced: l.synced, Events: l.raw}
	}
	return ref
}

// mark is the last message the book holds of a history: a read of it goes
// on right after it, once the stream shows it still holds it.
func (b *desiredBook) mark(key string) events.Mark {
	h := b.reader.Head(key)
	if h.Sequence == 0 {
		return events.Mark{}
	}
	if tail, ok := b.tails[key]; ok {
		return events.Mark{Sequence: h.Sequence, Digest: events.Digest(tail)}
	}
	return events.Mark{Sequence: h.Sequence, Digest: b.digests[key]}
}

// after is where a read of a scope's history goes on.
func (b *desiredBook) after(sc events.Scope) events.Mark { return b.mark(scopeKey(sc)) }

// nodeAfter is after for the node's own events.
func (b *desiredBook) nodeAfter() events.Mark { return b.mark(b.nodeKey()) }

// markSynced records that sc's history was read to the end of the stream.
func (b *desiredBook) markSynced(sc events.Scope) bool {
	l := b.scopes[sc]
	if l == nil || l.synced {
		return false
	}
	l.synced = true
	return true
}

// applied says what folding one stored message did.
type applied struct {
	scope   events.Scope // the scope it changed or was skipped in; zero for node events
	kind    events.Kind  // of the event applied
	changed bool         // desired state changed (scope or drain)
	node    bool         // a node event
	skipped error        // a message that cannot be used: reported, never applied
}

// errDuplicate marks a message the book already holds (a replay): ignored
// silently.
var errDuplicate = errors.New("already applied")

// apply folds one stored message of a scope's or the node's history.
// Replays are ignored; a message that is rejected or cannot be folded is
// skipped and returned in skipped, and still holds its revision.
func (b *desiredBook) apply(m events.Message) applied {
	rec := b.reader.Read(m)
	var out applied
	if !rec.Duplicate && rec.History() != "" {
		b.tails[rec.History()] = m.Data
	}
	switch {
	case rec.Duplicate:
		out.skipped = errDuplicate
		return out
	case rec.Family == events.FamilyScope:
		out.scope = rec.Scope
		l := b.scopes[rec.Scope]
		if l == nil {
			out.skipped = fmt.Errorf("skipped the message at sequence %d: scope %s is not served by node %s", m.Sequence, rec.Scope, b.node)
			return out
		}
		if err := l.hist.Take(rec); err != nil {
			out.skipped = err
			return out
		}
		l.raw = append(l.raw, json.RawMessage(slices.Clone(m.Data)))
		out.changed, out.kind = true, rec.Kind
	case rec.Family == events.FamilyNode && rec.Node == b.node:
		out.node = true
		if rec.Err != nil {
			out.skipped = rec.Err
			return out
		}
		switch d := rec.Event.Data.(type) {
		case *events.NodeDrained:
			b.nodeSt.Drained, b.nodeSt.Reason = true, d.Reason
		case *events.NodeUndrained:
			b.nodeSt.Drained, b.nodeSt.Reason = false, ""
		case *events.NodeKey:
			b.nodeSt.Key = d.Public
		}
		out.changed = true
	default:
		out.skipped = fmt.Errorf("skipped the message at sequence %d on %s: not an event of node %s or its scopes", m.Sequence, m.Subject, b.node)
	}
	return out
}

// desired returns what scope should run, and whether it is known: read to
// the end of the stream, or from a valid reference file.
func (b *desiredBook) desired(sc events.Scope) (deploy.Desired, bool) {
	l := b.scopes[sc]
	if l == nil || !l.synced {
		return deploy.Desired{}, false
	}
	return desiredOf(l.hist.State()), true
}

// desiredOf is what a scope's folded state asks of this node's replicas,
// and of its reports.
func desiredOf(st projector.State) deploy.Desired {
	d := deploy.Desired{Scope: st.Scope, Revision: st.Revision, Spec: st.Spec, Removed: st.Removed, Traffic: st.Traffic()}
	if c := st.Canary; c != nil && st.Exists() {
		d.Canary = &deploy.CanaryDesired{ID: c.ID, Spec: c.Spec, Replicas: c.Replicas}
	}
	return d
}

// keyring returns a copy of scope's keyring, or nil when it has neither
// grants nor keys.
func (b *desiredBook) keyring(sc events.Scope) *projector.Keyring {
	l := b.scopes[sc]
	if l == nil {
		return nil
	}
	ring := l.hist.Keyring()
	if len(ring.Grants) == 0 && len(ring.Keys) == 0 {
		return nil
	}
	return ring.Clone()
}

// scopeList returns the book's scopes, sorted.
func (b *desiredBook) scopeList() []events.Scope {
	out := make([]events.Scope, 0, len(b.scopes))
	for sc := range b.scopes {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b events.Scope) int { return strings.Compare(a.String(), b.String()) })
	return out
}
