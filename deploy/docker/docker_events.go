package docker

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"

	"github.com/hoist-dev/hoist/deploy"
	hoistevents "github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/backoff"
)

// Watch streams Docker events about this node's containers that mean a
// replica changed behind the reconciler's back: die, stop, destroy, oom and
// health status changes. The reconciler's own stops show up too; they
// cost one reconcile that finds nothing to do.
//
// The event stream is a long-lived call bounded only by ctx. When it
// breaks, Watch reconnects with a growing delay and then sends a Change
// with Action "reconnect", because events may have been missed meanwhile.
func (d *Runtime) Watch(ctx context.Context) <-chan deploy.Change {
	ch := make(chan deploy.Change, 16)
	go func() {
		defer close(ch)
		pause := backoff.New(time.Second, 30*time.Second)
		for {
			start := time.Now()
			err := d.watchOnce(ctx, ch)
			if ctx.Err() != nil {
				return
			}
			if time.Since(start) > time.Minute {
				pause.Reset() // it ran well for a while: start over
			}
			delay := pause.Next()
			d.log.Warn("docker event stream ended; reconnecting", "err", err, "in", delay)
			if !backoff.Sleep(ctx, delay) {
				return
			}
			send(ch, deploy.Change{Action: "reconnect"})
		}
	}()
	return ch
}

func (d *Runtime) watchOnce(ctx context.Context, ch chan<- deploy.Change) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := d.ownFilter()
	f.Add("type", string(events.ContainerEventType))
	msgs, errs := d.c.Events(ctx, events.ListOptions{Filters: f})
	for {
		select {
		case err := <-errs:
			return err
		case m := <-msgs:
			if !driftAction(m.Action) || !deploy.OwnedBy(m.Actor.Attributes, d.node) {
				continue
			}
			c := deploy.Change{ID: m.Actor.ID, Action: string(m.Action)}
			if sc, err := hoistevents.ParseScope(m.Actor.Attributes[deploy.LabelScope]); err == nil {
				c.Scope = sc
			}
			c.Index, _ = strconv.Atoi(m.Actor.Attributes[deploy.LabelReplica])
			send(ch, c)
		}
	}
}

func driftAction(a events.Action) bool {
	switch a {
	case events.ActionDie, events.ActionStop, events.ActionDestroy, events.ActionOOM:
		return true
	}
	return strings.HasPrefix(string(a), "health_status")
}

// send hands c over unless the consumer is behind: then a change is
// already pending, and it triggers the same full reconcile.
func send(ch chan<- deploy.Change, c deploy.Change) {
	select {
	case ch <- c:
	default:
	}
}
