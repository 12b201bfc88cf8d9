package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
)

// trafficStanding is a scope's standing pause and maintenance page, with
// the events that put them up (for who and why), nil for none.
type trafficStanding struct {
	pause       *events.Pause
	pausedBy    *events.Event
	maintenance *events.Maintenance
	maintBy     *events.Event
}

// readTrafficStanding folds the scope's history for its pause and
// maintenance page: node reports do not carry them.
func readTrafficStanding(ctx context.Context, st *store.Store, scope events.Scope) (trafficStanding, error) {
	hist, err := st.ScopeHistory(ctx, scope, 0)
	if err != nil {
		return trafficStanding{}, fmt.Errorf("read history of %s: %w", scope, err)
	}
	h, _ := projector.Fold(scope, hist.Records)
	s := trafficStanding{pause: h.State().Paused, maintenance: h.State().Maintenance}
	// The event that put each up is the last accepted one of its kind:
	// the fold skips none of those.
	for _, e := range hist.Events() {
		switch e.Kind {
		case events.KindPaused:
			s.pausedBy = e
		case events.KindMaintenanceOn:
			s.maintBy = e
		}
	}
	return s, nil
}

// print writes one line for each of the pause and the maintenance page.
func (s trafficStanding) print(w io.Writer, scope events.Scope, now time.Time) {
	since := func(t time.Time, by *events.Event) string {
		out := "since " + t.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
		if by != nil && by.Actor != "" {
			out += " by " + by.Actor
		}
		return out
	}
	if m := s.maintenance; m != nil {
		msg := ""
		if m.Message != "" {
			msg = ": " + strconv.Quote(m.Message)
		}
		fmt.Fprintf(w, "%s is in MAINTENANCE %s: balancers answer every request 503 with its page%s\n", scope, since(m.Since, s.maintBy), msg)
	}
	if p := s.pause; p != nil {
		why := ""
		if s.pausedBy != nil {
			if d, ok := s.pausedBy.Data.(*events.Paused); ok && d.Reason != "" {
				why = " (" + strconv.Quote(d.Reason) + ")"
			}
		}
		note := ""
		if s.maintenance != nil {
			note = "; the maintenance page wins while it is up"
		}
		fmt.Fprintf(w, "%s is PAUSED %s%s: balancers hold new requests, each at most %s%s; 'hoist resume %s' releases them\n",
			scope, since(p.Since, s.pausedBy), why, time.Duration(p.Max), note, scope)
	}
}
