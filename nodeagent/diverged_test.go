package nodeagent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// A server restored from an older backup holds another history than the
// one the agent read: the agent must see it, say so, set its reference
// file aside, rebuild from the stream (the truth) and run what the stream
// says, whether it was connected through the restore or started after it.
// Issue 10's repro: back up at revision 1, publish 3 events, restore, then
// publish scale and env.
func TestRestoredServerDoesNotDivergeAgent(t *testing.T) {
	for _, restarted := range []bool{false, true} {
		name := "connected through the restore"
		if restarted {
			name = "started after the restore"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			rt := processRuntime(t, h.node, h.dataDir)
			opts := h.options(rt)
			a := h.open(opts)
			rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, map[string]string{"DEMO_MESSAGE": "one"})})
			waitConverged(t, a, scopeWeb, rev, 1)

			backup := h.nats.Backup()
			h.reconnect(t)
			h.append(&events.Scaled{Replicas: 2})
			h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "lost-1"}})
			rev = h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "lost-2"}})
			waitConverged(t, a, scopeWeb, rev, 2)

			if restarted {
				a.Close()
			}
			h.nats.Restore(backup)
			h.reconnect(t)
			// Three events: the stream reaches the sequence the agent read
			// up to, with other messages at it.
			h.append(&events.Scaled{Replicas: 3})
			h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "two"}})
			rev = h.append(&events.EnvChanged{Set: map[string]string{"DEMO_MESSAGE": "three"}})
			if rev != 4 {
				t.Fatalf("the restored stream's head is %d, want 4", rev)
			}
			if restarted {
				a = h.open(opts)
			}

			st := waitConverged(t, a, scopeWeb, rev, 3)
			natstest.Eventually(t, 20*time.Second, func() error {
				st = waitConverged(t, a, scopeWeb, rev, 3)
				for _, r := range st.Replicas {
					if got := message(t, r.Backend); got != "three" {
						return fmt.Errorf("replica %d answers %q, want the stream's env (three)", r.Index, got)
					}
				}
				return nil
			})
			// What the node reports having read is what the stream holds,
			// which is what 'hoist wait' checks.
			if st.Head == nil {
				t.Fatal("the status names no head")
			}
			if held, err := h.store.Holds(context.Background(), events.EventsStream, events.ScopeFilter(scopeWeb), *st.Head); err != nil || !held {
				t.Fatalf("the stream does not hold the head %+v the node reports: %v", *st.Head, err)
			}
			aside, _ := filepath.Glob(h.ref + ".diverged-*")
			if len(aside) != 1 {
				t.Fatalf("want the diverged reference file set aside once, found %v", aside)
			}
			if !strings.Contains(readFile(t, aside[0]), "lost-2") {
				t.Error("the file set aside is not the one the agent read")
			}
		})
	}
}

// reconnect gives the harness a store on a new connection, after a
// server restart.
func (h *harness) reconnect(t *testing.T) {
	t.Helper()
	nc, err := store.Connect(store.ConnectOptions{URL: h.nats.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h.store, err = store.Open(ctx, nc, store.Options{}); err != nil {
		t.Fatal(err)
	}
}
