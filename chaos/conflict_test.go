package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nuid"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// TestConflictingPublishers: ten publishers, each on its own connection,
// race for the same revision round after round with ExpectRevision. In
// every round exactly one wins and the other nine get a ConflictError; the
// history then holds each winner once and no loser. The same race through
// the CLI (hoist scale --expect-revision) gives every loser exit 3.
// events.TestConcurrentConditionalPublishersNeverBothWin races two stores
// in-process; this is the ten-way race at scale.
func TestConflictingPublishers(t *testing.T) {
	needHoist(t)
	srv := natstest.StartSyncAlways(t)
	const publishers = 10
	t.Run("store", func(t *testing.T) {
		rounds := pick(50, 500)
		stores := make([]*store.Store, publishers)
		for i := range stores {
			stores[i] = srv.Store(t)
		}
		scope, _ := events.ParseScope("race.store.web")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := stores[0].Append(ctx, &events.Event{Scope: scope, Actor: "chaos", Data: &events.Scaled{Replicas: 1}}, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		winners := map[string]bool{}
		losers := map[string]bool{}
		for round := uint64(1); round <= uint64(rounds); round++ {
			var (
				mu   sync.Mutex
				wg   sync.WaitGroup
				wins []string
			)
			start := make(chan struct{})
			for i, st := range stores {
				wg.Go(func() {
					<-start
					expect := round
					ev := &events.Event{ID: nuid.Next(), Scope: scope, Actor: "chaos", Data: &events.Scaled{Replicas: i + 1}}
					_, err := st.Append(ctx, ev, store.AppendOptions{ExpectRevision: &expect})
					var conflict *store.ConflictError
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins = append(wins, ev.ID)
						winners[ev.ID] = true
					case errors.As(err, &conflict):
						losers[ev.ID] = true
					default:
						t.Errorf("round %d, publisher %d: neither a win nor a conflict: %v", round, i, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("round %d: %d publishers won, want exactly 1", round, len(wins))
			}
		}
		h, err := stores[0].ScopeHistory(ctx, scope, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, r := range h.Records {
			seen[r.Event.ID]++
		}
		var lost, dup, loserStored int
		for id := range winners {
			if seen[id] == 0 {
				lost++
			}
		}
		for id, n := range seen {
			dup += n - 1
			if losers[id] {
				loserStored++
			}
		}
		t.Logf("FIGURE conflicts store: %d rounds × %d publishers: %d wins, %d conflicts, %d lost, %d duplicated, %d losers stored",
			rounds, publishers, len(winners), len(losers), lost, dup, loserStored)
		if len(h.Records) != rounds+1 || lost != 0 || dup != 0 || loserStored != 0 || len(losers) != rounds*(publishers-1) {
			t.Errorf("history of %d records after %d rounds: %d lost, %d duplicated, %d losers stored, %d conflicts",
				len(h.Records), rounds, lost, dup, loserStored, len(losers))
		}
	})
	t.Run("cli", func(t *testing.T) {
		rounds := pick(3, 50)
		env := []string{"HOIST_NATS_URL=" + srv.URL()}
		scope := "race.cli.web"
		mustHoist(t, env, 0, "deploy", scope, "--image", "web:1", "--port", "8080")
		var exit3, wins int
		for round := 1; round <= rounds; round++ {
			results := make([]result, publishers)
			var wg sync.WaitGroup
			for i := range publishers {
				wg.Go(func() {
					results[i] = runHoist(t, env, "scale", scope, strconv.Itoa(i+1), "--expect-revision", strconv.Itoa(round))
				})
			}
			wg.Wait()
			won := 0
			for i, r := range results {
				switch r.code {
				case 0:
					won++
				case 3:
					exit3++
				default:
					t.Errorf("round %d, publisher %d: %s", round, i, r)
				}
			}
			wins += won
			if won != 1 {
				t.Fatalf("round %d: %d publishers won, want 1: %v", round, won, results)
			}
		}
		r := mustHoist(t, env, 0, "log", scope, "--json")
		if got := countJSONEntries(t, r.stdout); got != rounds+1 {
			t.Errorf("hoist log has %d entries, want %d", got, rounds+1)
		}
		t.Logf("FIGURE conflicts cli: %d rounds × %d hoist scale --expect-revision: %d exit 0, %d exit 3", rounds, publishers, wins, exit3)
	})
}

func countJSONEntries(t *testing.T, s string) int {
	t.Helper()
	var entries []map[string]any
	if err := json.Unmarshal([]byte(s), &entries); err != nil {
		t.Fatalf("hoist log --json: %v: %s", err, s)
	}
	return len(entries)
}
