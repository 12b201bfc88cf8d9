package nodeagent

import (
	"context"
	"sync"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// readScores folds the latest score of every backend of scopes into the
// state, for agent-check weights, until ctx ends or the returned stop is
// called (which waits for it). A read the server refuses is logged once;
// checks then answer unscored (100%).
func (a *Agent) readScores(ctx context.Context, st *store.Store, scopes []events.Scope) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, sc := range scopes {
		wg.Go(func() {
			err := st.Follow(ctx, store.Follow{Stream: events.ScoresStream, Filter: events.ScoreFilter(sc)},
				func(m events.Message) {
					if err := a.st.takeScore(events.Interpret(m)); err != nil {
						a.log.Warn("skipping a score", "subject", m.Subject, "seq", m.Sequence, "err", err)
						return
					}
					a.st.poke()
				}, nil)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("cannot read scores; agent checks answer unscored", "scope", sc, "err", err)
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
