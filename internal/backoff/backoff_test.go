package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestNextDoublesUpToTheLimitWithEqualJitter(t *testing.T) {
	const first, limit = 10 * time.Millisecond, 80 * time.Millisecond
	for range 200 {
		b := New(first, limit)
		step := first
		for range 8 {
			d := b.Next()
			if d < step/2 || d > step {
				t.Fatalf("pause %s outside [%s, %s]", d, step/2, step)
			}
			step = min(2*step, limit)
		}
	}
}

func TestFullJitterSpansZeroToTheStep(t *testing.T) {
	const step = 1000 * time.Nanosecond
	var low, high bool
	for range 2000 {
		b := Full(step, step)
		d := b.Next()
		if d < 0 || d > step {
			t.Fatalf("pause %s outside [0, %s]", d, step)
		}
		low = low || d < step/4
		high = high || d > 3*step/4
	}
	if !low || !high {
		t.Fatalf("2000 pauses did not reach both quarters of [0, %s]: low %v, high %v", step, low, high)
	}
}

func TestJitterVaries(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[New(time.Second, time.Second).Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("100 pauses took only %d values: no jitter", len(seen))
	}
}

func TestResetStartsOver(t *testing.T) {
	b := New(time.Millisecond, time.Hour)
	for range 10 {
		b.Next()
	}
	b.Reset()
	if d := b.Next(); d > time.Millisecond {
		t.Fatalf("pause after Reset = %s, want at most the first step", d)
	}
}

func TestOddBounds(t *testing.T) {
	// A limit below first, and a zero first, still give sane pauses.
	if d := New(time.Second, time.Millisecond).Next(); d < time.Second/2 || d > time.Second {
		t.Fatalf("limit below first: pause %s", d)
	}
	b := New(0, 0)
	for range 5 {
		if d := b.Next(); d < 0 || d > time.Nanosecond {
			t.Fatalf("zero bounds: pause %s", d)
		}
	}
}

func TestWaitSleepsThePause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(time.Second, 4*time.Second)
		for _, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			start := time.Now()
			if !b.Wait(t.Context()) {
				t.Fatal("Wait returned false with a live context")
			}
			if d := time.Since(start); d < step/2 || d > step {
				t.Fatalf("waited %s, want [%s, %s]", d, step/2, step)
			}
		}
	})
}

func TestWaitEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		time.AfterFunc(time.Second, cancel)
		if New(time.Hour, time.Hour).Wait(ctx) {
			t.Fatal("Wait returned true after its context was cancelled")
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("Wait returned after %s, want when the context ended (1s)", d)
		}
		start = time.Now()
		if New(time.Hour, time.Hour).Wait(ctx) || time.Since(start) != 0 {
			t.Fatal("Wait on an ended context must return false at once")
		}
	})
}
