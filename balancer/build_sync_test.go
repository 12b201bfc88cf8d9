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

// weightAfter lets d pass, and checks the backend's weight in the table in
// use then.
func (w *builderWorld) weightAfter(d time.Duration, sc events.Scope, addr string, want int, when string) {
	w.t.Helper()
	time.Sleep(d)
	synctest.Wait()
	n, ok := w.b.Table().Weight(sc, addr)
	if !ok {
		w.t.Fatalf("%s: %s has no backend %s in the table", when, sc, addr)
	}
	if n != want {
		w.t.Fatalf("%s: weight %d, want %d", when, n, want)
	}
}

const addr1 = "10.0.0.1:80"

// startScored runs a builder whose scores go stale after a minute (then
// the default score, 50, counts), with web's one backend scored score.
func startScored(t *testing.T, score int) *builderWorld {
	w := newBuilder(t, func(c *Config) { c.ScoreMaxAge, c.DefaultScore = time.Minute, 50 })
	w.announce(web, "n1", addr1)
	w.score(web, addr1, score)
	w.caughtUp()
	w.start()
	return w
}

// A score older than ScoreMaxAge falls back to the default score at that
// age, with no message arriving to wake the builder: its stale timer does.
func TestBuilderDropsAStaleScoreAtItsAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startScored(t, 90)
		w.weightAfter(0, web, addr1, 90, "the score")
		w.weightAfter(time.Minute-time.Millisecond, web, addr1, 90, "just before the score is a minute old")
		w.weightAfter(2*time.Millisecond, web, addr1, 50, "once the score is stale (the default score)")
	})
}

// A fresh score resets the age: the timer is armed again for the new one.
func TestBuilderRearmsTheStaleTimerForANewerScore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startScored(t, 90)
		time.Sleep(40 * time.Second)
		w.score(web, addr1, 70)
		w.weightAfter(40*time.Second, web, addr1, 70, "the first score is stale, the newer is not")
		w.weightAfter(21*time.Second, web, addr1, 50, "once the newer score is stale")
	})
}

// Everything queued when the builder wakes is folded into one table: a
// builder that finds the streams caught up and 1000 scores waiting builds
// once, not 1000 times.
func TestBuilderBuildsOnceForWhatIsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newBuilder(t, nil)
		w.caughtUp()
		w.announce(web, "n1", addr1)
		for i := range 1000 {
			w.score(web, addr1, i%100+1)
		}
		w.start()
		w.weightAfter(0, web, addr1, 100, "the last score")
		if n := w.b.builds.Load(); n != 1 {
			t.Fatalf("%d tables built, want 1 for one batch", n)
		}
	})
}
