package lifecycle

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestStopJoinsEveryGoroutine(t *testing.T) {
	g := New(context.Background(), nil, 0)
	var ended atomic.Int32
	for range 5 {
		if !g.Go("reader", func(ctx context.Context) {
			<-ctx.Done()
			ended.Add(1)
		}) {
			t.Fatal("Go refused before Stop")
		}
	}
	g.Go("done at once", func(context.Context) { ended.Add(1) })
	if err := g.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := ended.Load(); n != 6 {
		t.Fatalf("Stop returned with %d of 6 goroutines ended", n)
	}
}

func TestStopIsIdempotentAndRefusesLateGoroutines(t *testing.T) {
	g := New(context.Background(), nil, 0)
	g.Go("w", func(ctx context.Context) { <-ctx.Done() })
	for i := range 3 {
		if err := g.Stop(); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	if g.Go("late", func(context.Context) { t.Error("a goroutine started after Stop") }) {
		t.Fatal("Go after Stop reported true")
	}
	if g.Context().Err() == nil {
		t.Fatal("the context outlives Stop")
	}
}

func TestStopOfAnEmptyGroup(t *testing.T) {
	if err := New(context.Background(), nil, 0).Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestParentEndsTheGoroutines(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	g := New(parent, nil, 0)
	ended := make(chan struct{})
	g.Go("w", func(ctx context.Context) { <-ctx.Done(); close(ended) })
	cancel()
	<-ended // no deadline needed: the test's own timeout catches a hang
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
}

// A goroutine that ignores its context is named, not waited for forever,
// and a later Stop waits for it again once it can end.
func TestStopReportsAGoroutineThatIgnoresItsContext(t *testing.T) {
	g := New(context.Background(), nil, 20*time.Millisecond)
	release := make(chan struct{})
	g.Go("polite", func(ctx context.Context) { <-ctx.Done() })
	g.Go("stubborn", func(context.Context) { <-release })

	err := g.Stop()
	var stuck *StuckError
	if !errors.As(err, &stuck) {
		t.Fatalf("Stop = %v, want a *StuckError", err)
	}
	if !slices.Equal(stuck.Names, []string{"stubborn"}) {
		t.Fatalf("stuck = %v, want [stubborn]", stuck.Names)
	}
	close(release)
	g.bound = DefaultBound // the stubborn one ends now: wait as long as it takes
	if err := g.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
