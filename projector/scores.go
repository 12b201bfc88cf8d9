package projector

import (
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Score is the latest score of one backend and when it was given.
type Score struct {
	Value int
	Time  time.Time
}

// Scores folds score events into the latest score per scope and backend.
// Score events are only ever superseded, so applying them out of order by
// time keeps the newest.
type Scores struct {
	table map[events.Scope]map[string]Score
}

// NewScores returns an empty score table.
func NewScores() *Scores { return &Scores{table: make(map[events.Scope]map[string]Score)} }

// Apply folds one score event. Anything else is a Skip.
func (s *Scores) Apply(e *events.Event) error {
	d, ok := e.Data.(*events.BackendScored)
	if !ok {
		return skip(e, "is not a score")
	}
	byBackend := s.table[e.Scope]
	if byBackend == nil {
		byBackend = make(map[string]Score)
		s.table[e.Scope] = byBackend
	}
	if prev, ok := byBackend[d.Backend]; ok && prev.Time.After(e.Time) {
		return nil
	}
	byBackend[d.Backend] = Score{Value: d.Score, Time: e.Time}
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
