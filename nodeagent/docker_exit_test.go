package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/imagetest"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// A container that exits is removed with its logs: its last lines reach
// the agent's log at warning level and its status first. A new replica
// that prints and exits 3 fails the rollout with its output in the
// scope's error; a serving replica that dies is replaced, and the
// replacement's detail says what the dead one printed last.
func TestDockerExitedReplicaKeepsLastLines(t *testing.T) {
	w := newDockerWorld(t)
	sh := imagetest.ShellImage(t)
	var logs natstest.SyncBuffer
	opts := w.options()
	opts.Logger = slog.New(slog.NewMultiHandler(opts.Logger.Handler(), slog.NewTextHandler(&logs, nil)))
	a := w.open(opts)

	script := "echo starting; echo config missing >&2; echo giving up; exit 3"
	rev := w.append(&events.Deployed{Spec: events.Spec{Image: sh, Command: []string{script}, Replicas: 1,
		Update: events.UpdateStrategy{HealthTimeout: events.Duration(30 * time.Second)}}})
	var st events.ScopeStatus
	natstest.Eventually(t, 60*time.Second, func() error {
		if st = scopeStatus(a, scopeWeb); st.Phase != events.PhaseFailed || st.Desired != rev {
			return fmt.Errorf("phase %s desired %d, error %q", st.Phase, st.Desired, st.Error)
		}
		return nil
	})
	// Docker keeps stdout and stderr apart and may hand them back in
	// another order than they were written: each line is there.
	if !strings.Contains(st.Error, "exit code 3; last output: ") || !strings.Contains(st.Error, "giving up") ||
		!strings.Contains(st.Error, "starting") || !strings.Contains(st.Error, "config missing") {
		t.Errorf("the scope's error does not carry the replica's last lines: %q", st.Error)
	}
	if line := logLine(&logs, "replica exited; its last lines follow"); !strings.Contains(line, "level=WARN") ||
		!strings.Contains(line, "scope=acme.prod.web") || !strings.Contains(line, "index=0") ||
		!strings.Contains(line, `detail="exit code 3"`) || !strings.Contains(line, "giving up") {
		t.Errorf("agent log: %q\n%s", line, logs.String())
	}

	// A serving replica killed: its replacement says what it printed.
	rev = w.append(&events.Deployed{Spec: w.spec(1, nil)})
	st = waitConverged(t, a, scopeWeb, rev, 1)
	victim := st.Replicas[0].ID
	if err := w.docker.ContainerKill(context.Background(), victim, "KILL"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 60*time.Second, func() error {
		st = scopeStatus(a, scopeWeb)
		if len(st.Replicas) != 1 || st.Replicas[0].ID == victim || st.Phase != events.PhaseConverged {
			return fmt.Errorf("phase %s, replicas %+v", st.Phase, st.Replicas)
		}
		return nil
	})
	want := "replaces " + deploy.ShortID(victim) + ", which exited (exit code 137); last output: "
	if d := st.Replicas[0].Detail; !strings.HasPrefix(d, want) || !strings.Contains(d, "demo backend listening") || len(d) > 1200 {
		t.Errorf("replacement detail %q, want %q and the demo's log line", d, want)
	}
	// The status a node publishes carries it too, for hoist status SCOPE.
	natstest.Eventually(t, 10*time.Second, func() error {
		sts, err := w.store.NodeStatuses(context.Background(), scopeWeb, nil)
		if err != nil {
			return err
		}
		for _, ns := range sts {
			for _, sc := range ns.Scopes {
				for _, r := range sc.Replicas {
					if strings.HasPrefix(r.Detail, want) {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no published replica detail starts with %q", want)
	})
}

// logLine is the first line of log that contains s, or "".
func logLine(log *natstest.SyncBuffer, s string) string {
	for line := range strings.SplitSeq(log.String(), "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
