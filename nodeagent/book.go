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

// book is the agent's desired state: every configured scope's history,
// the node's drain standing and the last stream sequence folded. It is
// owned by one goroutine (the feed) and has no locks.
type book struct {
	node   string
	seq    uint64 // the consumer's position: the last sequence folded
	high   uint64 // the highest sequence ever folded
	scopes map[events.Scope]*scopeLog
	nodeSt referenceNode
}

type scopeLog struct {
	hist     *projector.History
	raw      []json.RawMessage // the applied events, as stored
	complete bool              // raw is the history from its start up to seq
	synced   bool              // read to the end of the stream at least once
}

func newBook(node string, scopes []events.Scope) *book {
	b := &book{node: node, scopes: map[events.Scope]*scopeLog{}}
	b.setScopes(scopes)
	return b
}

// setScopes makes the book hold exactly scopes: new ones start empty and
// unsynced, dropped ones are forgotten. It returns the scopes added.
func (b *book) setScopes(scopes []events.Scope) (added []events.Scope) {
	keep := map[events.Scope]bool{}
	for _, sc := range scopes {
		keep[sc] = true
		if b.scopes[sc] == nil {
			b.scopes[sc] = &scopeLog{hist: projector.NewHistory(sc)}
			added = append(added, sc)
		}
	}
	for sc := range b.scopes {
		if !keep[sc] {
			delete(b.scopes, sc)
		}
	}
	return added
}

// bookFromReference rebuilds a book from a reference file, keeping only the
// configured scopes. Every stored event must decode and fold: the file
// holds only events that did, so one that does not means the file cannot
// be trusted.
func bookFromReference(ref *reference, scopes []events.Scope) (*book, error) {
	b := newBook(ref.Node, scopes)
	b.seq, b.high = ref.Sequence, max(ref.High, ref.Sequence)
	b.nodeSt = ref.NodeLog
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
			if err != nil {
				return nil, fmt.Errorf("%w: scope %s event %d: %v", ErrCorruptReference, sc, i+1, err)
			}
			if err := l.hist.Apply(e); err != nil {
				return nil, fmt.Errorf("%w: scope %s event %d: %v", ErrCorruptReference, sc, i+1, err)
			}
			l.raw = append(l.raw, raw)
		}
		l.complete, l.synced = stored.Complete, stored.Synced
	}
	return b, nil
}

// reference returns the book as a reference file.
func (b *book) reference(failures []deploy.Failure, now time.Time) *reference {
	ref := &reference{
		Version:  referenceVersion,
		Node:     b.node,
		Sequence: b.seq,
		High:     b.high,
		Written:  now.UTC(),
		Scopes:   make(map[string]*referenceLog, len(b.scopes)),
		NodeLog:  b.nodeSt,
		Failures: failures,
	}
	for sc, l := range b.scopes {
		ref.Scopes[sc.String()] = &referenceLog{Complete: l.complete, Synced: l.synced, Events: l.raw}
	}
	return ref
}

// complete reports whether every scope's history is held from its start,
// so the consumer may resume after seq instead of replaying the stream.
func (b *book) complete() bool {
	for _, l := range b.scopes {
		if !l.complete {
			return false
		}
	}
	return true
}

// markComplete records that the consumer replays the stream from its
// start: from here on every history is whole up to seq.
func (b *book) markComplete() {
	for _, l := range b.scopes {
		l.complete = true
	}
}

// markSynced records that every history was read to the end of the stream.
func (b *book) markSynced() (newly []events.Scope) {
	for sc, l := range b.scopes {
		if !l.synced {
			l.synced = true
			newly = append(newly, sc)
		}
	}
	b.nodeSt.Synced = true
	return newly
}

// applied says what folding one stored message did.
type applied struct {
	scope   events.Scope // the scope it changed or was skipped in; zero for node events
	changed bool         // desired state changed (scope or drain)
	node    bool         // a node event
	skipped error        // an event that cannot be used: reported, never applied
}

// errDuplicate marks an event the book already holds (a replay): ignored
// silently.
var errDuplicate = errors.New("already applied")

// apply folds the message at stream sequence seq. Events are deduplicated by
// revision, so a replay applies nothing twice; an event that cannot be
// decoded or folded is skipped and returned in skipped, never applied.
func (b *book) apply(seq uint64, subject string, data []byte) applied {
	replay := seq <= b.high
	b.seq, b.high = seq, max(b.high, seq)
	var out applied
	if sc, ok := events.ScopeFromSubject(subject); ok && strings.HasPrefix(subject, "hoist.scope.") {
		out.scope = sc
	}
	e, err := events.Decode(data)
	if err != nil {
		if replay {
			out.skipped = errDuplicate // reported when first read
			return out
		}
		out.skipped = events.Unreadable{Sequence: seq, Subject: subject, Err: err}
		return out
	}
	switch {
	case e.Kind.IsScopeKind():
		out.scope = e.Scope
		l := b.scopes[e.Scope]
		switch {
		case l == nil:
			out.skipped = fmt.Errorf("skipped event at sequence %d: scope %s is not served by node %s", seq, e.Scope, b.node)
		case e.Revision <= l.hist.Revision():
			out.skipped = errDuplicate
		default:
			if err := l.hist.Apply(e); err != nil {
				out.skipped = fmt.Errorf("skipped event at sequence %d: %w", seq, err)
				return out
			}
			l.raw = append(l.raw, json.RawMessage(slices.Clone(data)))
			out.changed = true
		}
	case e.Kind.IsNodeKind():
		out.node = true
		switch {
		case e.Node != b.node:
			out.skipped = fmt.Errorf("skipped %s event at sequence %d: it is for node %s, not %s", e.Kind, seq, e.Node, b.node)
		case e.Revision <= b.nodeSt.Revision:
			out.skipped = errDuplicate
		default:
			b.nodeSt.Revision = e.Revision
			d, drained := e.Data.(*events.NodeDrained)
			b.nodeSt.Drained = drained
			b.nodeSt.Reason = ""
			if drained {
				b.nodeSt.Reason = d.Reason
			}
			out.changed = true
		}
	default:
		out.skipped = fmt.Errorf("skipped %s event at sequence %d: not a config event", e.Kind, seq)
	}
	return out
}

// desired returns what scope should run, and whether it is known: read to
// the end of the stream, or from a valid reference file.
func (b *book) desired(sc events.Scope) (deploy.Desired, bool) {
	l := b.scopes[sc]
	if l == nil || !l.synced {
		return deploy.Desired{}, false
	}
	st := l.hist.State()
	return deploy.Desired{Scope: sc, Revision: st.Revision, Spec: st.Spec, Removed: st.Removed}, true
}

// scopeList returns the book's scopes, sorted.
func (b *book) scopeList() []events.Scope {
	out := make([]events.Scope, 0, len(b.scopes))
	for sc := range b.scopes {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b events.Scope) int { return strings.Compare(a.String(), b.String()) })
	return out
}
