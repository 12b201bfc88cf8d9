package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// source is one of the streams the balancer follows.
type source int

const (
	srcEvents source = iota
	srcScores
	srcReports
	numSources
)

func (s source) String() string {
	switch s {
	case srcEvents:
		return "events"
	case srcScores:
		return "scores"
	case srcReports:
		return "reports"
	}
	return "unknown"
}

// feedMsg is one stream message handed to the builder.
type feedMsg struct {
	src     source
	subject string
	data    []byte
	seq     uint64
	pending uint64
}

// feed is the three ordered consumers. Their callbacks only hand messages
// to the builder over msgs (blocking: the builder's pace is the feed's
// backpressure), so all folding happens on one goroutine.
type feed struct {
	msgs    chan feedMsg
	targets [numSources]uint64 // last matching sequence at start: catch-up is reaching it
	cons    [numSources]jetstream.Consumer
	subs    [numSources]jetstream.ConsumeContext
	log     *slog.Logger
}

// startFeed creates the consumers with setup (for the NATS calls) and runs
// them until run ends or stop is called.
func startFeed(setup, run context.Context, store *events.Store, log *slog.Logger) (*feed, error) {
	js := store.JetStream()
	specs := [numSources]struct {
		stream  string
		filters []string
	}{
		srcEvents:  {events.EventsStream, []string{events.AllScopesFilter, events.AllNodesFilter}},
		srcScores:  {events.ScoresStream, []string{events.AllScoresFilter}},
		srcReports: {events.BackendsStream, []string{events.AllBackendsFilter}},
	}
	f := &feed{msgs: make(chan feedMsg, 1024), log: log}
	for i, sp := range specs {
		src := source(i)
		if err := f.follow(setup, run, js, src, sp.stream, sp.filters); err != nil {
			f.stop()
			return nil, err
		}
	}
	return f, nil
}

func (f *feed) follow(setup, run context.Context, js jetstream.JetStream, src source, stream string, filters []string) error {
	ctx, cancel := context.WithTimeout(setup, 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	for _, filter := range filters {
		m, err := st.GetLastMsgForSubject(ctx, filter)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("follow %s: read head of %s: %w", stream, filter, err)
		default:
			f.targets[src] = max(f.targets[src], m.Sequence)
		}
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	handler := func(m jetstream.Msg) {
		fm := feedMsg{src: src, subject: m.Subject(), data: m.Data()}
		if meta, err := m.Metadata(); err == nil {
			fm.seq, fm.pending = meta.Sequence.Stream, meta.NumPending
		}
		select {
		case f.msgs <- fm:
		case <-run.Done():
		}
	}
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if run.Err() == nil {
			f.log.Debug("stream consumer interrupted, it resumes on its own", "stream", stream, "err", err)
		}
	})
	cc, err := cons.Consume(handler, onErr)
	if err != nil {
		return fmt.Errorf("follow %s: %w", stream, err)
	}
	f.cons[src], f.subs[src] = cons, cc
	return nil
}

// pendingZero asks the server whether src's consumer has nothing left to
// deliver: the catch-up fallback for a stream whose last message at start
// expired before it was read.
func (f *feed) pendingZero(ctx context.Context, src source) bool {
	if f.cons[src] == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := f.cons[src].Info(ctx)
	return err == nil && info.NumPending == 0
}

// stop ends the consumers and waits (briefly) until their callbacks are done.
func (f *feed) stop() {
	for _, cc := range f.subs {
		if cc != nil {
			cc.Stop()
		}
	}
	for _, cc := range f.subs {
		if cc == nil {
			continue
		}
		select {
		case <-cc.Closed():
		case <-time.After(2 * time.Second):
		}
	}
}
