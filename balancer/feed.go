package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// source is one of the streams the balancer follows.
type source int

const (
	srcNodes   source = iota // drains and undrains, on HOIST_EVENTS
	srcScores                // HOIST_SCORES
	srcReports               // backends reports, on HOIST_BACKENDS
	numSources
)

func (s source) String() string {
	switch s {
	case srcNodes:
		return "nodes"
	case srcScores:
		return "scores"
	case srcReports:
		return "backends"
	}
	return "unknown"
}

// feedMsg is one stream message handed to the builder, or the mark that a
// source caught up with what its stream held when it started.
type feedMsg struct {
	src      source
	msg      events.Message
	caughtUp bool
	reset    bool // forget what src folded: it is read again from the start
}

// feed is the three stream readers. The balancer reads no config event:
// those carry env values, and the balancer credential may read only
// backends, scores and drains. Their callbacks only hand messages to the
// builder over msgs (blocking: the builder's pace is the feed's
// backpressure), so all folding happens on one goroutine.
type feed struct {
	msgs    chan feedMsg
	readers *lifecycle.Group
	log     *slog.Logger

	// dead is closed when a reader stopped for good (the server refuses
	// the balancer a stream): the table would never again follow that
	// stream, so the balancer must not pretend to run. err says why.
	dead     chan struct{}
	deadOnce sync.Once
	err      error
}

// startFeed starts the readers; they run until run ends or stop is called.
func startFeed(run context.Context, st *store.Store, log *slog.Logger) *feed {
	f := &feed{msgs: make(chan feedMsg, 1024), readers: lifecycle.New(run, log, 0), log: log, dead: make(chan struct{})}
	// Every kept message, from the start, not only the last of each
	// subject: a rejected report or score must not hide the accepted one
	// before it (see the package doc).
	specs := [numSources]store.Follow{
		srcNodes:   {Stream: events.EventsStream, Filter: events.AllNodesFilter},
		srcScores:  {Stream: events.ScoresStream, Filter: events.AllScoresFilter},
		srcReports: {Stream: events.BackendsStream, Filter: events.AllBackendsFilter},
	}
	for i, spec := range specs {
		src := source(i)
		f.readers.Go("follow "+spec.Stream, func(ctx context.Context) {
			send := func(m feedMsg) {
				select {
				case f.msgs <- m:
				case <-ctx.Done():
				}
			}
			err := st.Follow(ctx, spec, func(m events.Message) { send(feedMsg{src: src, msg: m}) },
				func() { send(feedMsg{src: src, caughtUp: true}) })
			for errors.Is(err, store.ErrDiverged) && ctx.Err() == nil {
				// The server was restored from an older copy: what was
				// folded from this stream is not its history any more.
				log.Warn("the stream no longer holds what the balancer read; reading it again from the start", "stream", spec.Stream, "err", err)
				send(feedMsg{src: src, reset: true})
				err = st.Follow(ctx, spec, func(m events.Message) { send(feedMsg{src: src, msg: m}) }, nil)
			}
			if err == nil || ctx.Err() != nil {
				return
			}
			if errors.Is(err, store.ErrPermission) {
				log.Error("the server refuses the balancer a stream it needs; check its credential", "stream", spec.Stream, "err", err)
			} else {
				log.Error("stream reader stopped", "stream", spec.Stream, "err", err)
			}
			f.fail(fmt.Errorf("follow %s: %w", spec.Stream, err))
		})
	}
	return f
}

// fail records why a reader stopped for good; the first reason is kept.
func (f *feed) fail(err error) {
	f.deadOnce.Do(func() {
		f.err = err
		close(f.dead)
	})
}

// stop ends the readers and waits for them; it names one that did not end
// in time.
func (f *feed) stop() error { return f.readers.Stop() }
