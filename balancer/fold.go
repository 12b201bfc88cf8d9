package balancer

import (
	"errors"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// Fold is the balancer's fold of the backends, scores and drains streams,
// for readers that show the weight table without proxying (the HTTP API):
// the same messages give the same weights as in a running balancer. It
// does no I/O and is not safe for concurrent use.
type Fold struct {
	st   *folded
	reg  *registry
	opts buildOptions
}

// NewFold starts an empty fold. defaultScore and maxAge are the
// balancer's Config.DefaultScore and Config.ScoreMaxAge (0: the defaults).
func NewFold(defaultScore int, maxAge time.Duration) *Fold {
	if defaultScore == 0 {
		defaultScore = DefaultDefaultScore
	}
	return &Fold{st: newFolded(), reg: newRegistry(), opts: buildOptions{defaultScore: defaultScore, maxAge: maxAge}}
}

// Apply folds one message of HOIST_BACKENDS, HOIST_SCORES or a node's
// history in HOIST_EVENTS, in stream order. It returns why a message was
// skipped (rejected, or not one the balancer folds); a replay is no error.
func (f *Fold) Apply(m events.Message) error {
	var err error
	switch m.Stream {
	case events.EventsStream:
		err = f.st.applyNode(m)
	case events.ScoresStream:
		err = f.st.scores.Take(events.Interpret(m))
	case events.BackendsStream:
		err = f.st.applyReport(events.Interpret(m))
	default:
		return errors.New("the balancer folds no message of " + m.Stream)
	}
	if errors.Is(err, errDuplicate) {
		return nil
	}
	return err
}

// Reset forgets what was folded from stream, before it is read again from
// the start (the stream diverged).
func (f *Fold) Reset(stream string) {
	switch stream {
	case events.EventsStream:
		f.st.reset(srcNodes)
	case events.ScoresStream:
		f.st.reset(srcScores)
	case events.BackendsStream:
		f.st.reset(srcReports)
	}
}

// Table builds the weight table of what was folded, at now.
func (f *Fold) Table(now time.Time) *Table {
	return buildTable(f.st, f.opts, now, f.reg)
}
