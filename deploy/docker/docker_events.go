package docker

import (
	"context"
	"fmt"
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
// The event stream is a long-lived call bounded only by ctx. The first
// one asks for the events since Watch was called, so a container that
// dies while the stream is being opened is reported. When it breaks,
// Watch reconnects with a growing delay and then sends a Change with
// Action "reconnect", because events may have been missed meanwhile.
func (d *Runtime) Watch(ctx context.Context) <-chan deploy.Change {
	ch := make(chan deploy.Change, 16)
	since := time.Now()
	go func() {
		defer close(ch)
		pause := backoff.New(time.Second, 30*time.Second)
		for {
			start := time.Now()
			err := d.watchOnce(ctx, ch, since)
			since = time.Time{} // a reconnect resyncs instead
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

// watchOnce follows one event stream, from since when it is set.
func (d *Runtime) watchOnce(ctx context.Context, ch chan<- deploy.Change, since time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := d.ownFilter()
	f.Add("type", string(events.ContainerEventType))
	opts := events.ListOptions{Filters: f}
	if !since.IsZero() {
		// The daemon replays what it buffered since then and streams the
		// rest; it never filters live events by since, so a daemon clock
		// that differs can only replay more or fewer earlier events.
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	msgs, errs := d.c.Events(ctx, opts)
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
