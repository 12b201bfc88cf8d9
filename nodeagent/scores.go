package nodeagent

import (
	"context"
	"log/slog"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// readScores folds the latest score of every backend of scopes into
// status, for agent-check weights, until ctx ends or the returned stop is
// called (which waits for it). A read the server refuses is logged once;
// checks then answer unscored (100%).
func readScores(ctx context.Context, st *store.Store, scopes []events.Scope, status *statusBook, log *slog.Logger) (stop func()) {
	readers := lifecycle.New(ctx, log, 0)
	for _, sc := range scopes {
		readers.Go("scores "+sc.String(), func(ctx context.Context) {
			err := st.Follow(ctx, store.Follow{Stream: events.ScoresStream, Filter: events.ScoreFilter(sc)},
				func(m events.Message) {
					if err := status.takeScore(events.Interpret(m)); err != nil {
						log.Warn("skipping a score", "subject", m.Subject, "seq", m.Sequence, "err", err)
						return
					}
					status.poke()
				}, nil)
			if err != nil && ctx.Err() == nil {
				log.Warn("cannot read scores; agent checks answer unscored", "scope", sc, "err", err)
			}
		})
	}
	return func() { _ = readers.Stop() } // a reader still running is logged by Stop
}
