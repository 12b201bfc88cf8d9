package nodeagent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// readScores folds the latest score of every backend of scopes into the
// state, for agent-check weights, until ctx ends or the returned stop is
// called (which waits for it). It reads through an ordered consumer, which
// recreates itself after gaps and reconnects; failing to set one up is
// retried, and never stops the agent: checks then answer unscored (100%).
func (a *Agent) readScores(ctx context.Context, store *events.Store, scopes []events.Scope) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		backoff := time.Second
		for {
			cc, err := a.consumeScores(ctx, store, scopes)
			if err == nil {
				<-ctx.Done()
				cc.Stop()
				return
			}
			a.log.Debug("score feed not ready; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

func (a *Agent) consumeScores(ctx context.Context, store *events.Store, scopes []events.Scope) (jetstream.ConsumeContext, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("no scopes")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := store.JetStream().Stream(cctx, events.ScoresStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.ScoresStream, err)
	}
	var filters []string
	for _, sc := range scopes {
		filters = append(filters, events.ScoreFilter(sc))
	}
	oc, err := stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("score consumer: %w", err)
	}
	return oc.Consume(func(m jetstream.Msg) {
		e, err := events.Decode(m.Data())
		if err == nil {
			err = a.st.applyScore(e)
		}
		if err != nil {
			a.log.Debug("skipping a score", "subject", m.Subject(), "err", err)
			return
		}
		a.st.poke()
	})
}
