package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
	"github.com/hoist-dev/hoist/projector"
)

// These drive the feed's fold loop alone inside a testing/synctest bubble,
// fed by hand what its stream readers would deliver: the batch linger and
// the write retry pass in virtual time, so the tests say when each batch
// was handed to the workers without waiting for it. The agent tests show
// the same loop behind real stream readers.

// handed is one desired state the feed gave a worker, and when.
type handed struct {
	revision uint64
	after    time.Duration // from the bubble's start
}

type feedWorld struct {
	t     *testing.T
	f     *feed
	items chan feedItem
	start time.Time

	mu     sync.Mutex
	handed []handed
}

// newFeedWorld is a feed of scopeWeb writing its reference file to path.
func newFeedWorld(t *testing.T, path string) *feedWorld {
	w := &feedWorld{t: t, items: make(chan feedItem, 1024), start: time.Now()}
	w.f = &feed{book: newDesiredBook("n1", []events.Scope{scopeWeb}), path: path, log: testLogger(t),
		status: newStatusBook("n1", "", "process", "test", time.Second, time.Now()),
		reload: make(chan reloadReq), persist: make(chan struct{}, 1), notify: map[events.Scope]bool{},
		hooks: feedHooks{
			now:      time.Now,
			failures: func() []deploy.Failure { return nil },
			deliver: func(d deploy.Desired, _ *projector.Keyring) {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.handed = append(w.handed, handed{d.Revision, time.Since(w.start)})
			},
			offerAnalysis: func(events.Scope, canaryView, bool) {},
		}}
	return w
}

// run starts the fold loop until the test ends, with scopeWeb's history
// read to its end.
func (w *feedWorld) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.f.consume(ctx, w.items, nil)
	}()
	w.t.Cleanup(func() {
		cancel()
		<-done
	})
	w.items <- feedItem{scope: scopeWeb, caughtUp: true}
}

// event delivers scopeWeb's event at revision rev.
func (w *feedWorld) event(rev uint64, p events.Payload) {
	e := scopeEvent(rev, p)
	e.ID = fmt.Sprintf("id-%d", rev)
	w.items <- feedItem{scope: scopeWeb, msg: msgAt(rev, events.ScopeSubject(scopeWeb, p.Kind(), "ci"), encode(w.t, e))}
}

// take returns what was handed to the workers so far, and forgets it.
func (w *feedWorld) take() []handed {
	synctest.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.handed
	w.handed = nil
	return out
}

func (w *feedWorld) want(what string, want ...handed) {
	w.t.Helper()
	got := w.take()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		w.t.Fatalf("%s: handed %v, want %v", what, got, want)
	}
}

// runFeed runs a feed writing to a temporary directory, past the hand-over
// of scopeWeb's empty history.
func runFeed(t *testing.T) *feedWorld {
	w := newFeedWorld(t, filepath.Join(t.TempDir(), "ref.json"))
	w.run()
	w.want("an empty history read to its end", handed{0, 0})
	return w
}

func deployWeb() events.Payload {
	return &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 1}}
}

// A burst of events is one write and one hand-over, batchLinger after its
// last event.
func TestFeedHandsABurstOnAfterTheLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := runFeed(t)
		w.event(1, deployWeb())
		time.Sleep(5 * time.Millisecond)
		w.event(2, &events.Scaled{Replicas: 2})
		time.Sleep(5 * time.Millisecond)
		w.event(3, &events.Scaled{Replicas: 3})
		time.Sleep(batchLinger - time.Millisecond)
		w.want("inside the linger")
		time.Sleep(time.Millisecond)
		w.want("after the linger", handed{3, 10*time.Millisecond + batchLinger})
	})
}

// batchMax messages are written and handed on at once, without lingering.
func TestFeedHandsAFullBatchOnAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := runFeed(t)
		w.event(1, deployWeb())
		for rev := uint64(2); rev <= batchMax; rev++ {
			w.event(rev, &events.Scaled{Replicas: int(rev % 5)})
		}
		w.want("a full batch", handed{batchMax, 0})
	})
}

// A pause changes only what balancers do: it is handed on at once, so the
// node's next report carries it without a linger.
func TestFeedHandsATrafficChangeOnAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := runFeed(t)
		w.event(1, deployWeb())
		time.Sleep(batchLinger)
		w.want("the deploy", handed{1, batchLinger})
		w.event(2, &events.Paused{Max: events.Duration(time.Minute)})
		w.want("the pause", handed{2, batchLinger})
	})
}

// Nothing is handed on before it is on disk: while the reference file
// cannot be written (its directory is a file), the batch waits, and the
// write is retried every commitRetry until it succeeds. The log says so
// once when it starts failing, and once when it ends.
func TestFeedRetriesAFailedWriteBeforeHandingOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.WriteFile(dir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		w := newFeedWorld(t, filepath.Join(dir, "ref.json"))
		var logged natstest.SyncBuffer
		w.f.log = slog.New(slog.NewTextHandler(&logged, nil))
		w.run()
		w.event(1, deployWeb())
		time.Sleep(batchLinger + commitRetry - time.Millisecond)
		w.want("while the file cannot be written")
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		time.Sleep(commitRetry)
		got := w.take()
		if len(got) != 1 || got[0].revision != 1 {
			t.Fatalf("handed %v once the file can be written, want revision 1", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "ref.json")); err != nil {
			t.Fatalf("handed on, but the reference file: %v", err)
		}
		if log := logged.String(); strings.Count(log, "cannot write the reference file") != 1 ||
			!strings.Contains(log, "wrote the reference file again") || !strings.Contains(log, "failed_writes=2") {
			t.Fatalf("want one error for 2 failed writes and one line when they end, got:\n%s", log)
		}
	})
}
