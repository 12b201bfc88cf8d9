package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nuid"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// publishLoad appends events with store.Store.Append, one publisher per
// scope, as a careful client would: an append that fails is retried with
// the same event id until it is acked, so each event is meant to be
// stored exactly once. It records what each publisher was told.
type publishLoad struct {
	prefix   string // subject prefix of the load's scopes
	acked    atomic.Int64
	least    int64
	budget   atomic.Int64 // events still to send at most
	stopped  chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	ackedIDs map[string]uint64 // id → revision the append returned
	pending  map[string]bool   // ids sent but never acked (given up)
	failures int               // failed attempts, each retried
	errs     map[string]int    // failed attempts by message
	stall    time.Duration     // longest an event waited for its ack

	wg sync.WaitGroup
}

// startPublishers appends events over publishers scopes of the client
// "load" and environment env, through stores (round robin), until stop is
// called and at least least events were acked; it never sends more than
// 10×least. It gives up on an event after giveUp.
func startPublishers(t *testing.T, stores []*store.Store, env string, publishers, least int, giveUp time.Duration) *publishLoad {
	t.Helper()
	l := &publishLoad{prefix: "hoist.scope.load." + env + ".", ackedIDs: map[string]uint64{}, pending: map[string]bool{},
		errs: map[string]int{}, least: int64(least), stopped: make(chan struct{})}
	l.budget.Store(int64(10 * least))
	for p := range publishers {
		scope, err := events.ParseScope(fmt.Sprintf("load.%s.p%d", env, p))
		if err != nil {
			t.Fatal(err)
		}
		st := stores[p%len(stores)]
		l.wg.Go(func() { l.publish(st, scope, giveUp) })
	}
	t.Cleanup(func() { l.stop(); l.wg.Wait() })
	return l
}

// stop lets the publishers end once least events were acked.
func (l *publishLoad) stop() { l.stopOnce.Do(func() { close(l.stopped) }) }

// more says whether a publisher sends another event.
func (l *publishLoad) more() bool {
	select {
	case <-l.stopped:
		if l.acked.Load() >= l.least {
			return false
		}
	default:
	}
	return l.budget.Add(-1) >= 0
}

func (l *publishLoad) publish(st *store.Store, scope events.Scope, giveUp time.Duration) {
	for k := 0; l.more(); k++ {
		ev := &events.Event{ID: nuid.Next(), Scope: scope, Actor: "chaos", Data: &events.Scaled{Replicas: k%9 + 1}}
		began := time.Now()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			got, err := st.Append(ctx, ev, store.AppendOptions{})
			cancel()
			l.mu.Lock()
			if err == nil {
				l.ackedIDs[got.ID] = got.Revision
				l.stall = max(l.stall, time.Since(began))
				l.mu.Unlock()
				l.acked.Add(1)
				break
			}
			l.failures++
			l.errs[shortErr(err)]++
			if time.Since(began) > giveUp {
				l.pending[ev.ID] = true
				l.mu.Unlock()
				break
			}
			l.mu.Unlock()
			time.Sleep(100 * time.Millisecond) // a client's pause before it retries, not a wait for a condition
		}
	}
}

// shortErr is an error message without its numbers, for counting.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// stopAndWait stops the publishers and waits for them to finish.
func (l *publishLoad) stopAndWait() {
	l.stop()
	l.wg.Wait()
}

// waitAcked waits until n events were acked, or every publisher is done.
func (l *publishLoad) waitAcked(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	deadline := time.After(timeout)
	for l.acked.Load() < n {
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatalf("only %d of %d events acked within %s; errors: %v", l.acked.Load(), n, timeout, l.errors())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *publishLoad) errors() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.errs)
}

// tally is what a check of the stored messages found.
type tally struct {
	acked, stored, lost, duplicated, unacked int
}

func (c tally) String() string {
	return fmt.Sprintf("%d acked, %d stored, %d lost, %d duplicated, %d never acked", c.acked, c.stored, c.lost, c.duplicated, c.unacked)
}

// check counts the load's events among msgs: each acked id must be stored
// once, any id at most once, and each scope's n-th message must be the
// event that was told revision n.
func (l *publishLoad) check(msgs []stored) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]int{}
	position := map[string]map[string]uint64{} // subject's scope → id → revision by position
	c := tally{acked: len(l.ackedIDs), unacked: len(l.pending)}
	for _, m := range msgs {
		if !strings.HasPrefix(m.subject, l.prefix) {
			continue
		}
		c.stored++
		seen[m.id]++
		scope := strings.Join(strings.Split(m.subject, ".")[2:5], ".")
		if position[scope] == nil {
			position[scope] = map[string]uint64{}
		}
		position[scope][m.id] = uint64(len(position[scope]) + 1)
	}
	for _, n := range seen {
		if n > 1 {
			c.duplicated += n - 1
		}
	}
	for id, rev := range l.ackedIDs {
		if seen[id] == 0 {
			c.lost++
			continue
		}
		for _, ids := range position {
			if r, ok := ids[id]; ok && r != rev {
				c.lost++ // told a revision its event does not hold
			}
		}
	}
	return c
}

// summary is one line for the log and docs/reliability.md.
func (l *publishLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := slices.Sorted(maps.Keys(l.errs))
	var errs []string
	for _, k := range keys {
		errs = append(errs, fmt.Sprintf("%d× %s", l.errs[k], k))
	}
	return fmt.Sprintf("%d acked, %d failed attempts (retried), longest wait for an ack %s; errors: [%s]",
		len(l.ackedIDs), l.failures, l.stall.Round(time.Millisecond), strings.Join(errs, "; "))
}
