package projector

import (
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Score is the latest score of one backend and when the server stored it.
type Score struct {
	Value    int
	Time     time.Time
	Sequence uint64
}

// Scores folds score records into the latest score per scope and backend.
// The latest is the one stored last (the highest stream sequence), and its
// age is the server's timestamp: a score can never outrank later ones by
// the date in its body.
type Scores struct {
	table map[events.Scope]map[string]Score
}

// NewScores returns an empty score table.
func NewScores() *Scores { return &Scores{table: make(map[events.Scope]map[string]Score)} }

// Take folds one score record. A rejected record, or anything but a
// score, is a Skip and changes nothing.
func (s *Scores) Take(r events.Record) error {
	if r.Err != nil {
		return &Skip{Kind: r.Kind, Scope: r.Scope, Reason: r.Err.Error(), Err: r.Err}
	}
	d, ok := r.Event.Data.(*events.BackendScored)
	if !ok || r.Family != events.FamilyScore {
		return skip(r.Event, "is not a score")
	}
	byBackend := s.table[r.Scope]
	if byBackend == nil {
		byBackend = make(map[string]Score)
		s.table[r.Scope] = byBackend
	}
	if prev, ok := byBackend[d.Backend]; ok && prev.Sequence > r.Sequence {
		return nil
	}
	t := r.Message.Time
	if t.IsZero() {
		t = r.Event.Time
	}
	byBackend[d.Backend] = Score{Value: d.Score, Time: t, Sequence: r.Sequence}
	return nil
}

// Scope returns a copy of one scope's backend→score table.
func (s *Scores) Scope(scope events.Scope) map[string]Score {
	out := make(map[string]Score, len(s.table[scope]))
	for b, sc := range s.table[scope] {
		out[b] = sc
	}
	return out
}

// Lookup returns one backend's score.
func (s *Scores) Lookup(scope events.Scope, backend string) (Score, bool) {
	sc, ok := s.table[scope][backend]
	return sc, ok
}
