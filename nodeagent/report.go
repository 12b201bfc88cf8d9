package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	st       *statusBook
	pub      publisher
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	sent    map[events.Scope]string // the backends and traffic last published (reportKey)
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
			key := reportKey(br)
			if !heartbeat && r.sent[br.Scope] == key {
				continue
			}
			if err = r.pub.PublishBackends(ctx, br); err != nil {
				break
			}
			if r.sent[br.Scope] != key {
				r.log.Info("announced backends", "scope", br.Scope, "backends", br.Backends, "canary", br.Canary, "traffic", trafficText(br.Traffic))
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

// reportKey is what a change of which publishes a scope's report at once:
// its backends, which of them are the canary's, and what balancers are to
// do with the scope's requests.
func reportKey(br *events.BackendsReport) string {
	var sb strings.Builder
	sb.WriteString(strings.Join(br.Backends, ","))
	for _, b := range slices.Sorted(maps.Keys(br.Canary)) {
		sb.WriteString(" c:" + b)
	}
	sb.WriteString(" " + trafficText(br.Traffic))
	return sb.String()
}

// trafficText writes a traffic policy for a log line and a report key.
func trafficText(t *events.Traffic) string {
	if t.IsZero() {
		return "-"
	}
	var parts []string
	if c := t.Canary; c != nil {
		parts = append(parts, fmt.Sprintf("canary=%d share=%d sticky=%v", c.ID, c.Share, c.Sticky))
	}
	if p := t.Paused; p != nil {
		parts = append(parts, fmt.Sprintf("paused since=%s max=%s", p.Since.Format(time.RFC3339Nano), time.Duration(p.Max)))
	}
	if m := t.Maintenance; m != nil {
		parts = append(parts, fmt.Sprintf("maintenance since=%s message=%q", m.Since.Format(time.RFC3339Nano), m.Message))
	}
	return strings.Join(parts, " ")
}
