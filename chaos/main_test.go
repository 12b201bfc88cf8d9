package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/imagebuild"
)

var seedFlag = flag.Int64("seed", 0, "replay the random choices of a run (also HOIST_CHAOS_SEED); 0 picks one")

// hoistBin is a static (CGO_ENABLED=0) build of ./cmd/hoist, made once
// by TestMain: the host runs it as agents, balancers and the CLI, and the
// cluster's image holds the same file. Empty under -short.
var hoistBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "hoist-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bin := filepath.Join(dir, "hoist")
	err = imagebuild.BuildStatic(ctx, "github.com/hoist-dev/hoist/cmd/hoist", bin)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	hoistBin = bin
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needHoist skips the suite under -short.
func needHoist(t *testing.T) {
	t.Helper()
	if testing.Short() || hoistBin == "" {
		t.Skip("chaos test: slow, skipped with -short")
	}
}

// long reports whether the long version runs (HOIST_CHAOS_LONG=1).
func long() bool { return os.Getenv("HOIST_CHAOS_LONG") == "1" }

// pick is short or, in the long version, long.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// seed is the run's seed: -seed, else HOIST_CHAOS_SEED, else the clock.
// Every test that draws from it logs it with the command that replays it.
func seed(t *testing.T) int64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		if v := os.Getenv("HOIST_CHAOS_SEED"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("HOIST_CHAOS_SEED=%q: %v", v, err)
			}
			s = n
		}
	}
	if s == 0 {
		s = time.Now().UnixNano()
	}
	t.Logf("seed %d: replay with HOIST_CHAOS_SEED=%d go test ./chaos -run '^%s$'", s, s, t.Name())
	return s
}
