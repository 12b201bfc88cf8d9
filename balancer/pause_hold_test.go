package balancer

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// These drive a holdQueue alone inside a testing/synctest bubble: a
// pause's Max passes in virtual time, so the tests assert when each held
// request ends without waiting for it. The pause tests in pause_test.go
// go through NATS and real sockets, which a bubble cannot wait on.

// heldEnd is how one held request ended, and when (from the bubble's start).
type heldEnd struct {
	res   holdResult
	after time.Duration
}

// goHold holds a request on q in the background; its end comes on the channel.
func goHold(ctx context.Context, q *holdQueue, closing <-chan struct{}, bound int, wait time.Duration) <-chan heldEnd {
	start := time.Now()
	ch := make(chan heldEnd, 1)
	go func() {
		res := q.hold(ctx, closing, bound, wait)
		ch <- heldEnd{res, time.Since(start)}
	}()
	return ch
}

func TestHoldQueueAnswersAtThePauseMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var q holdQueue
		q.set(true)
		first := goHold(t.Context(), &q, nil, 8, 30*time.Second)
		time.Sleep(10 * time.Second)
		second := goHold(t.Context(), &q, nil, 8, 20*time.Second) // Max is from arrival: 20s are left
		synctest.Wait()
		if n := q.held(); n != 2 {
			t.Fatalf("held %d, want 2", n)
		}
		for i, ch := range []<-chan heldEnd{first, second} {
			want := []time.Duration{30 * time.Second, 20 * time.Second}[i]
			if got := <-ch; got != (heldEnd{holdExpired, want}) {
				t.Errorf("request %d: %+v, want expired after %v", i, got, want)
			}
		}
		if n := q.held(); n != 0 {
			t.Errorf("held %d after both expired, want 0", n)
		}
	})
}

func TestHoldQueueResumeReleasesEveryHeldRequestAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var q holdQueue
		q.set(true)
		var held []<-chan heldEnd
		for range 3 {
			held = append(held, goHold(t.Context(), &q, nil, 3, time.Minute))
		}
		synctest.Wait()
		// The queue is at its bound: the next request is answered at once.
		if got := <-goHold(t.Context(), &q, nil, 3, time.Minute); got != (heldEnd{holdFull, 0}) {
			t.Errorf("request past the bound: %+v, want full at once", got)
		}

		time.Sleep(15 * time.Second)
		q.set(false)
		for i, ch := range held {
			if got := <-ch; got != (heldEnd{holdReleased, 15 * time.Second}) {
				t.Errorf("request %d: %+v, want released at the resume, 15s in", i, got)
			}
		}
		// A request after the resume is not held at all.
		if got := <-goHold(t.Context(), &q, nil, 3, time.Minute); got != (heldEnd{holdReleased, 0}) {
			t.Errorf("request after the resume: %+v, want released at once", got)
		}
		if total := q.total.Load(); total != 3 {
			t.Errorf("total held %d, want 3", total)
		}
	})
}

func TestHoldQueueDropsAGoneClientAndAnswersOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var q holdQueue
		q.set(true)
		closing := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		gone := goHold(ctx, &q, closing, 8, time.Minute)
		stays := goHold(t.Context(), &q, closing, 8, time.Minute)

		time.Sleep(5 * time.Second)
		cancel()
		if got := <-gone; got != (heldEnd{holdGone, 5 * time.Second}) {
			t.Errorf("gone client: %+v, want gone 5s in", got)
		}
		synctest.Wait()
		if n := q.held(); n != 1 {
			t.Errorf("held %d after a client went away, want 1", n)
		}

		time.Sleep(5 * time.Second)
		close(closing)
		if got := <-stays; got != (heldEnd{holdClosing, 10 * time.Second}) {
			t.Errorf("held at close: %+v, want closing 10s in, not the pause's Max", got)
		}
		if n := q.held(); n != 0 {
			t.Errorf("held %d after close, want 0", n)
		}
	})
}
