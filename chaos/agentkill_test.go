package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// TestAgentKilledAtRandomPoints SIGKILLs the agent at a random point of
// each rolling update (the seed is logged; HOIST_CHAOS_SEED replays it),
// starts a new one, and wants the scope converged on the latest revision
// with no orphan and no duplicate replica. nodeagent's
// TestAgentKilledMidRolloutConverges kills at one chosen point; this one
// draws the points.
func TestAgentKilledAtRandomPoints(t *testing.T) {
	needHoist(t)
	rng := rand.New(rand.NewPCG(uint64(seed(t)), 0))
	kills := pick(3, 30)
	const replicas = 2
	srv := natstest.StartSyncAlways(t)
	env := []string{"HOIST_NATS_URL=" + srv.URL(), "HOIST_LOG_FORMAT=json"}
	demo := imagetest.DemoBinary(t)
	scope, node := "kill.r"+randomID()+".web", "node-"+randomID()
	dir := t.TempDir()
	nodeToml := filepath.Join(dir, "node.toml")
	conf := fmt.Sprintf("version = \"1\"\nname = %q\nscopes = [%q]\nadvertise = \"127.0.0.1\"\n", node, scope)
	if err := os.WriteFile(nodeToml, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	t.Cleanup(func() { killReplicas(t, filepath.Join(data, "process"), demo) })
	startAgent := func(k int) *proc {
		return startProc(t, fmt.Sprintf("agent %d", k), env, "agent", "--node-config", nodeToml, "--data", data,
			"--runtime", "process", "--agent-check", "127.0.0.1:0", "--heartbeat", "1s")
	}
	agent := startAgent(0)
	mustHoist(t, env, 0, "deploy", scope, "--replicas", strconv.Itoa(replicas), "--port", "8080", "--health-path", "/up",
		"--command", strconv.Quote(demo))
	mustHoist(t, env, 0, "wait", scope, "--timeout", "90s")
	var crashed, bad int
	for k := 1; k <= kills; k++ {
		rev := k + 1
		mustHoist(t, env, 0, "env", scope, "VERSION="+strconv.Itoa(k))
		// The kill point is the experiment: somewhere in the rollout, which
		// takes about a second per replica here.
		at := time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))
		time.Sleep(at)
		agent.kill()
		agent = startAgent(k)
		if r := runHoist(t, env, "wait", scope, "--timeout", "90s"); r.code != 0 {
			t.Errorf("kill %d (%s into the rollout of revision %d): hoist wait: %s", k, at, rev, r)
			bad++
			continue
		}
		if err := natstest.Poll(60*time.Second, func() error {
			return checkReplicas(filepath.Join(data, "process"), demo, replicas, rev)
		}); err != nil {
			t.Errorf("kill %d (%s into the rollout of revision %d): %v", k, at, rev, err)
			bad++
		}
		t.Logf("kill %d at %s into the rollout of revision %d: converged", k, at.Round(time.Millisecond), rev)
	}
	select {
	case <-agent.done:
		crashed++
	default:
	}
	t.Logf("FIGURE agent kills: %d SIGKILLs at random points, %d runs not converged or with orphans/duplicates, %d agents crashed", kills, bad, crashed)
}

// checkReplicas wants exactly n live replica processes of bin recorded
// under dir, with indexes 0..n-1, all of revision rev, each answering.
func checkReplicas(dir, bin string, n, rev int) error {
	var indexes []int
	for _, rec := range liveReplicas(dir, bin) {
		if rec.Labels["hoist.revision"] != strconv.Itoa(rev) {
			return fmt.Errorf("replica %s (pid %d) is of revision %s, want %d", rec.Labels["hoist.replica"], rec.PID, rec.Labels["hoist.revision"], rev)
		}
		i, _ := strconv.Atoi(rec.Labels["hoist.replica"])
		indexes = append(indexes, i)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/up", rec.Port), nil)
		res, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		res.Body.Close()
	}
	slices.Sort(indexes)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(indexes, want) {
		return fmt.Errorf("live replicas have indexes %v, want %v (an orphan or a duplicate)", indexes, want)
	}
	return nil
}
