// Package lifecycle gives every long-lived goroutine an owner that can stop
// it and wait for it: the one shape hoist uses for workers, readers, accept
// loops and servers, in the spirit of tailscale's eventbus workers.
//
// A Group starts named goroutines bound to its context. Stop cancels that
// context and returns once every goroutine has returned, or after the
// group's bound, naming the ones still running: shutdown is bounded, and a
// goroutine that ignores its context is reported instead of hanging its
// owner. Stop is safe to call twice, and Go after Stop starts nothing.
//
// What it must never do: start a goroutine that Stop does not wait for, or
// return from Stop silently while one still runs.
//
// A fan-out that the same function starts and joins before it returns
// (health probes of one tick, one Shutdown per server) needs no owner
// beyond that function: a sync.WaitGroup says it better.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultBound is how long Stop waits when the owner names no bound.
const DefaultBound = time.Minute

// Group owns goroutines: Go starts them, Stop ends them and waits.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	bound  time.Duration

	mu      sync.Mutex
	running map[string]int // goroutines still running, by name
	n       int
	stopped bool
	idle    chan struct{} // closed once stopped and no goroutine runs
	closed  bool
}

// New makes a group whose goroutines run until parent ends or Stop. Stop
// waits at most bound for them (DefaultBound when bound <= 0) and logs the
// ones still running on log (discarded when nil).
func New(parent context.Context, log *slog.Logger, bound time.Duration) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if bound <= 0 {
		bound = DefaultBound
	}
	ctx, cancel := context.WithCancel(parent)
	return &Group{ctx: ctx, cancel: cancel, log: log, bound: bound, running: map[string]int{}, idle: make(chan struct{})}
}

// Context is the goroutines' context: it ends when Stop is called or the
// parent ends. Work the owner does on the group's behalf (a call that
// should end with it) can use it too.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn(ctx) on a new goroutine named name, for Stop's report. It
// reports false, and runs nothing, once Stop was called.
func (g *Group) Go(name string, fn func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.running[name]++
	g.n++
	go func() {
		defer g.done(name)
		fn(g.ctx)
	}()
	return true
}

func (g *Group) done(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running[name]--; g.running[name] == 0 {
		delete(g.running, name)
	}
	g.n--
	g.closeIdle()
}

// closeIdle closes idle once the group is stopped and empty. g.mu is held.
func (g *Group) closeIdle() {
	if g.stopped && g.n == 0 && !g.closed {
		g.closed = true
		close(g.idle)
	}
}

// Stop cancels the goroutines' context and waits for them, at most the
// group's bound. It returns nil once they are all gone, or a *StuckError
// naming those that did not end in time (they are logged, and left
// running; a later Stop waits for them again).
func (g *Group) Stop() error {
	g.mu.Lock()
	g.stopped = true
	g.closeIdle()
	g.mu.Unlock()
	g.cancel()

	t := time.NewTimer(g.bound)
	defer t.Stop()
	select {
	case <-g.idle:
		return nil
	case <-t.C:
	}
	g.mu.Lock()
	names := slices.Sorted(maps.Keys(g.running))
	g.mu.Unlock()
	if len(names) == 0 { // they ended just now
		return nil
	}
	err := &StuckError{Names: names, After: g.bound}
	g.log.Error("goroutines did not stop in time; leaving them running", "after", g.bound.String(), "goroutines", names)
	return err
}

// StuckError names the goroutines that were still running when Stop gave
// up waiting.
type StuckError struct {
	Names []string
	After time.Duration
}

func (e *StuckError) Error() string {
	return fmt.Sprintf("still running %s after stop: %s", e.After, strings.Join(e.Names, ", "))
}
