package balancer

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// These drive the builder alone inside a testing/synctest bubble, fed by
// hand the messages its stream readers would hand it: a score's age passes
// in virtual time, and what is queued when the builder wakes is all there
// is. TestStaleScoresFallBackToDefault shows the same through NATS.

// builderWorld is a balancer's builder running on a feed the test fills.
type builderWorld struct {
	t   *testing.T
	b   *Balancer
	f   *feed
	seq uint64
}

// newBuilder makes the balancer and its feed; start runs the builder.
func newBuilder(t *testing.T, configure func(*Config)) *builderWorld {
	cfg := testConfig()
	if configure != nil {
		configure(&cfg)
	}
	b, err := New(cfg, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return &builderWorld{t: t, b: b, f: &feed{msgs: make(chan feedMsg, 4096), dead: make(chan struct{})}}
}

// start runs the builder until the test ends, and waits for it then.
func (w *builderWorld) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.b.buildLoop(ctx, w.f)
	}()
	w.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// caughtUp says every stream has been read up to where it stood.
func (w *builderWorld) caughtUp() {
	for src := range numSources {
		w.f.msgs <- feedMsg{src: source(src), caughtUp: true}
	}
}

func (w *builderWorld) send(src source, subject string, data []byte) {
	w.seq++
	w.f.msgs <- feedMsg{src: src, msg: events.Message{Subject: subject, Sequence: w.seq, Time: time.Now(), Data: data}}
}

// announce queues node's backends report for sc, as an agent publishes it.
func (w *builderWorld) announce(sc events.Scope, node string, backends ...string) {
	data, err := json.Marshal(&events.BackendsReport{Node: node, Scope: sc, Backends: backends, Time: time.Now()})
	if err != nil {
		w.t.Fatal(err)
	}
	w.send(srcReports, events.BackendsSubject(sc, node), data)
}

// score queues a score event for a backend of sc, as hoist score appends it.
func (w *builderWorld) score(sc events.Scope, backend string, n int) {
	e := &events.Event{ID: fmt.Sprintf("score-%d", w.seq+1), Scope: sc, Actor: "test", Time: time.Now(), Data: &events.BackendScored{Backend: backend, Score: n}}
	data, err := events.Encode(e)
	if err != nil {
		w.t.Fatal(err)
	}
	w.send(srcScores, events.ScoreSubject(sc, backend), data)
}

// weight is the backend's weight in the table in use now.
func (w *builderWorld) weight(sc events.Scope, addr string) int {
	w.t.Helper()
	n, ok := w.b.Table().Weight(sc, addr)
	if !ok {
		w.t.Fatalf("%s has no backend %s in the table", sc, addr)
	}
	return n
}

// A score older than ScoreMaxAge falls back to the default score at that
// age, with no message arriving to wake the builder: its stale timer does.
func TestBuilderDropsAStaleScoreAtItsAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newBuilder(t, func(c *Config) { c.ScoreMaxAge, c.DefaultScore = time.Minute, 50 })
		w.announce(web, "n1", "10.0.0.1:80")
		w.score(web, "10.0.0.1:80", 90)
		w.caughtUp()
		w.start()
		synctest.Wait()
		if n := w.weight(web, "10.0.0.1:80"); n != 90 {
			t.Fatalf("weight %d, want the score, 90", n)
		}
		time.Sleep(time.Minute - time.Millisecond)
		synctest.Wait()
		if n := w.weight(web, "10.0.0.1:80"); n != 90 {
			t.Fatalf("weight %d just before the score is a minute old, want 90", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := w.weight(web, "10.0.0.1:80"); n != 50 {
			t.Fatalf("weight %d once the score is stale, want the default score, 50", n)
		}
	})
}

// A fresh score resets the age: the timer is armed again for the new one.
func TestBuilderRearmsTheStaleTimerForANewerScore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newBuilder(t, func(c *Config) { c.ScoreMaxAge, c.DefaultScore = time.Minute, 50 })
		w.announce(web, "n1", "10.0.0.1:80")
		w.score(web, "10.0.0.1:80", 90)
		w.caughtUp()
		w.start()
		time.Sleep(40 * time.Second)
		w.score(web, "10.0.0.1:80", 70)
		synctest.Wait()
		time.Sleep(40 * time.Second) // the first score is stale, the second is not
		synctest.Wait()
		if n := w.weight(web, "10.0.0.1:80"); n != 70 {
			t.Fatalf("weight %d, want the newer score, 70", n)
		}
		time.Sleep(21 * time.Second)
		synctest.Wait()
		if n := w.weight(web, "10.0.0.1:80"); n != 50 {
			t.Fatalf("weight %d once the newer score is stale, want 50", n)
		}
	})
}

// Everything queued when the builder wakes is folded into one table: a
// builder that finds the streams caught up and 1000 scores waiting builds
// once, not 1000 times.
func TestBuilderBuildsOnceForWhatIsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newBuilder(t, nil)
		w.caughtUp()
		w.announce(web, "n1", "10.0.0.1:80")
		for i := range 1000 {
			w.score(web, "10.0.0.1:80", i%100+1)
		}
		w.start()
		synctest.Wait()
		if n := w.b.builds.Load(); n != 1 {
			t.Fatalf("%d tables built, want 1 for one batch", n)
		}
		if n := w.weight(web, "10.0.0.1:80"); n != 100 {
			t.Fatalf("weight %d, want the last score, 100", n)
		}
	})
}
