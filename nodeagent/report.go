package nodeagent

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// publisher is what the reporter needs of the store.
type publisher interface {
	PublishStatus(ctx context.Context, st *events.NodeStatus) error
	PublishBackends(ctx context.Context, r *events.BackendsReport) error
}

// reporter publishes the node's status on every change and as a heartbeat,
// and each scope's backends whenever the set changes and with every
// heartbeat, so a restarted balancer or an aged-out report is refreshed.
type reporter struct {
	st       *state
	pub      publisher
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	sent    map[events.Scope]string // the backends last published, joined
	lastErr string
}

func (r *reporter) run(ctx context.Context) {
	r.sent = map[events.Scope]string{}
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	r.publish(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.publish(ctx, true)
		case <-r.st.changed:
			r.publish(ctx, false)
		}
	}
}

func (r *reporter) publish(ctx context.Context, heartbeat bool) {
	now := r.now()
	err := r.pub.PublishStatus(ctx, r.st.nodeStatus(now))
	if err == nil {
		for _, br := range r.st.backendsReports(now) {
			key := strings.Join(br.Backends, ",")
			if !heartbeat && r.sent[br.Scope] == key {
				continue
			}
			if err = r.pub.PublishBackends(ctx, br); err != nil {
				break
			}
			if r.sent[br.Scope] != key {
				r.log.Info("announced backends", "scope", br.Scope, "backends", br.Backends)
			}
			r.sent[br.Scope] = key
		}
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg != "" && msg != r.lastErr:
		r.log.Warn("cannot publish node status", "err", err)
	case msg == "" && r.lastErr != "":
		r.log.Info("publishing node status again")
	}
	r.lastErr = msg
}
