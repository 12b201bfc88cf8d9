package process

import (
	"context"
	"time"

	"github.com/hoist-dev/hoist/deploy"
)

// Watch reports replicas whose process ended: at once for children this
// agent started, and by polling every PollInterval for the ones it adopted
// after a restart (they are not its children, so it cannot wait on them).
func (p *Runtime) Watch(ctx context.Context) <-chan deploy.Change {
	ch := make(chan deploy.Change, 16)
	p.mu.Lock()
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	// The first look is taken before Watch returns, so a replica that
	// dies right after is reported; taken on the goroutine, it could miss
	// one that died before the goroutine ran.
	alive := p.aliveSet()
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.subs, ch)
			close(ch)
			p.mu.Unlock()
		}()
		tick := time.NewTicker(p.poll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := p.aliveSet()
			for id, c := range alive {
				if _, ok := now[id]; !ok {
					c.Action = "exit"
					p.notify(c)
				}
			}
			alive = now
		}
	}()
	return ch
}

// aliveSet maps the ids of live replicas to a Change naming them.
func (p *Runtime) aliveSet() map[string]deploy.Change {
	recs, err := p.records()
	if err != nil {
		p.log.Warn("watch: list replicas", "err", err)
		return nil
	}
	out := map[string]deploy.Change{}
	for _, rec := range recs {
		if rep, ok := p.replica(rec); ok && rep.State == deploy.StateRunning {
			out[rec.ID] = deploy.Change{ID: rec.ID, Scope: rep.Scope, Index: rep.Index}
		}
	}
	return out
}

// notify hands c to every watcher that has room. A watcher that is behind
// already has a change pending, which triggers the same full reconcile.
func (p *Runtime) notify(c deploy.Change) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.subs {
		select {
		case ch <- c:
		default:
		}
	}
}
