package nodeagent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// convergedThenClosed deploys 2 replicas with a first agent and closes it;
// the replicas keep running. It returns the revision and the replicas.
func convergedThenClosed(t *testing.T, h *harness) (uint64, events.ScopeStatus) {
	t.Helper()
	first := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(first))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 2, nil)})
	st := waitConverged(t, a, scopeWeb, rev, 2)
	a.Close()
	return rev, st
}

func serving(t *testing.T, st events.ScopeStatus) {
	t.Helper()
	for _, r := range st.Replicas {
		if code, _, err := get("http://" + r.Backend + "/up"); err != nil || code != 200 {
			t.Errorf("replica %d at %s no longer serves: %d %v", r.Index, r.Backend, code, err)
		}
	}
}

// Invariant 1: NATS down at start and no usable reference file: the agent
// leaves running replicas alone and reports why.
func TestUnreadableDesiredStateLeavesReplicasAlone(t *testing.T) {
	// Eight ways a reference file is unusable: gone, or a file the agent
	// must not trust (it is set aside as corrupt).
	corruptions := []struct {
		name    string
		corrupt func(good []byte, node string) []byte
	}{
		{"missing", nil},
		{"empty", func([]byte, string) []byte { return nil }},
		{"truncated", func(good []byte, _ string) []byte { return good[:len(good)/2] }},
		{"binary garbage", func([]byte, string) []byte { return []byte{0xff, 0x00, 0xfe, '{', 0x9c} }},
		{"another node's", func(good []byte, node string) []byte {
			return bytes.Replace(good, []byte(`"node":"`+node+`"`), []byte(`"node":"someone-else"`), 1)
		}},
		{"a newer format", func(good []byte, _ string) []byte {
			return regexp.MustCompile(`"version":\d+`).ReplaceAll(good, []byte(`"version":99`))
		}},
		{"an invalid scope", func(good []byte, _ string) []byte {
			return bytes.Replace(good, []byte(`"acme.prod.web":`), []byte(`"Not A Scope":`), 1)
		}},
		{"an event that does not fold", func(good []byte, _ string) []byte {
			return bytes.Replace(good, []byte(`"kind":"deployed"`), []byte(`"kind":"scaled"`), 1)
		}},
	}
	for _, c := range corruptions {
		ref := "corrupt"
		if c.corrupt == nil {
			ref = "missing"
		}
		t.Run(c.name+" reference file", func(t *testing.T) {
			h := newHarness(t)
			_, before := convergedThenClosed(t, h)
			good, err := os.ReadFile(h.ref)
			if err != nil {
				t.Fatal(err)
			}
			if c.corrupt == nil {
				err = os.Remove(h.ref)
			} else if bad := c.corrupt(good, h.node); bytes.Equal(bad, good) {
				t.Fatalf("the %s corruption changed nothing in %s", c.name, good)
			} else {
				err = os.WriteFile(h.ref, bad, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			h.nats.Shutdown()

			rt := processRuntime(t, h.node, h.dataDir)
			opts := h.options(rt)
			opts.Resync = 50 * time.Millisecond
			a := h.open(opts)
			natstest.Eventually(t, 20*time.Second, func() error {
				ns := a.Status()
				if !strings.Contains(ns.Error, "desired state unreadable") || !strings.Contains(ns.Error, "left untouched") {
					return fmt.Errorf("node error %q", ns.Error)
				}
				if ref == "corrupt" && !strings.Contains(ns.Error, "reference file unusable") {
					return fmt.Errorf("node error %q does not report the corrupt file", ns.Error)
				}
				if st := scopeStatus(a, scopeWeb); len(st.Replicas) != 2 || rt.lists.Load() < 5 {
					return fmt.Errorf("observed %d replicas after %d lists", len(st.Replicas), rt.lists.Load())
				}
				return nil
			})
			if n := rt.mutations(); n != 0 {
				t.Fatalf("the agent changed replicas %d times without a desired state", n)
			}
			if got := check(t, a.AgentCheckAddr(), "acme.prod.web"); got != "ready up 100%\n" {
				t.Errorf("agent check while NATS is down: %q", got)
			}
			serving(t, before)
			if ref == "corrupt" {
				matches, _ := filepath.Glob(h.ref + ".corrupt-*")
				if len(matches) != 1 {
					t.Errorf("corrupt file not set aside: %v", matches)
				}
			}

			// NATS comes back: the history is read, and the running
			// replicas already match it.
			h.nats.Restart()
			waitConverged(t, a, scopeWeb, 1, 2)
			if n := rt.mutations(); n != 0 {
				t.Errorf("after NATS came back the agent changed replicas %d times; they already matched", n)
			}
			natstest.Eventually(t, 10*time.Second, func() error {
				if e := a.Status().Error; e != "" && !strings.Contains(e, "reference") {
					return fmt.Errorf("node error still %q", e)
				}
				return nil
			})
		})
	}
}

// Invariant 1 (the other half): NATS down, but a valid reference file: the
// agent acts on it, and the replicas it lists already match.
func TestValidReferenceFileWithoutNATS(t *testing.T) {
	h := newHarness(t)
	rev, before := convergedThenClosed(t, h)
	h.nats.Shutdown()

	rt := processRuntime(t, h.node, h.dataDir)
	opts := h.options(rt)
	opts.Resync = 50 * time.Millisecond
	a := h.open(opts)
	waitConverged(t, a, scopeWeb, rev, 2)
	natstest.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(a.Status().Error, "desired state unreadable") || rt.lists.Load() < 5 {
			return fmt.Errorf("node error %q after %d lists", a.Status().Error, rt.lists.Load())
		}
		return nil
	})
	if n := rt.mutations(); n != 0 {
		t.Fatalf("the agent changed replicas %d times", n)
	}
	serving(t, before)
}

// Invariant 4: a restart resumes after the reference file's sequences:
// nothing applied twice, nothing published meanwhile missed.
func TestRestartResumesFromTheReferenceFile(t *testing.T) {
	h := newHarness(t)
	convergedThenClosed(t, h)
	ref, err := loadReference(h.ref, h.node)
	if err != nil || ref == nil {
		t.Fatalf("reference file: %v", err)
	}

	// While the agent is down: a scale.
	rev := h.append(&events.Scaled{Replicas: 3})

	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	waitConverged(t, a, scopeWeb, rev, 3)
	if s, st := rt.starts.Load(), rt.stops.Load(); s != 1 || st != 0 {
		t.Errorf("after the restart: %d starts, %d stops; want 1 start (the third replica), 0 stops", s, st)
	}
	if before := ref.Scopes[scopeWeb.String()]; before == nil || before.Revision != rev-1 {
		t.Fatalf("the reference file held %+v before the restart", before)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		got, err := loadReference(h.ref, h.node)
		if err != nil {
			return err
		}
		if l := got.Scopes[scopeWeb.String()]; l == nil || len(l.Events) != 2 {
			return fmt.Errorf("reference file holds %+v", got.Scopes)
		}
		return nil
	})
}

// Invariant 3: messages that cannot be decoded or folded are skipped and
// reported; each holds its revision, and the agent goes on with the next.
func TestGarbageEventsAreSkipped(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, nil)})
	waitConverged(t, a, scopeWeb, rev, 1)

	ctx := context.Background()
	js := h.rawJS()
	subject := events.ScopeSubject(scopeWeb, events.KindScaled, "ci")
	for _, garbage := range []string{
		"not json",
		`{"schema":99,"id":"x","kind":"scaled","scope":"acme.prod.web","revision":2,"data":{"replicas":5}}`,
		`{"schema":1,"id":"y","kind":"exploded","scope":"acme.prod.web","revision":2,"data":{"replicas":5}}`,
	} {
		if _, err := js.Publish(ctx, subject, []byte(garbage)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if st := scopeStatus(a, scopeWeb); !strings.Contains(st.Error, `unknown event kind: "exploded"`) {
			return fmt.Errorf("scope error %q", st.Error)
		}
		return nil
	})
	natstest.Eventually(t, 10*time.Second, func() error {
		if st := scopeStatus(a, scopeWeb); st.Desired != rev+3 {
			return fmt.Errorf("desired revision %d, want %d: each message holds one", st.Desired, rev+3)
		}
		return nil
	})
	if st := scopeStatus(a, scopeWeb); len(st.Replicas) != 1 {
		t.Fatalf("garbage was applied: %+v", st)
	}

	rev = h.append(&events.Scaled{Replicas: 2})
	st := waitConverged(t, a, scopeWeb, rev, 2)
	if st.Error != "" {
		t.Errorf("error not cleared by the next good event: %q", st.Error)
	}
}

// A stream reader whose consumer is deleted under it notices (missed
// heartbeats) and is recreated where it left off.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, nil)})
	waitConverged(t, a, scopeWeb, rev, 1)

	ctx := context.Background()
	js := h.rawJS()
	stream, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for name := range stream.ListConsumers(ctx).Info() {
		if err := stream.DeleteConsumer(ctx, name.Name); err == nil {
			deleted++
		}
	}
	if deleted == 0 {
		t.Fatal("no consumer to delete")
	}
	rev = h.append(&events.Scaled{Replicas: 2})
	waitConverged(t, a, scopeWeb, rev, 2)
}

// Reloading the node config with a new scope replays that scope's history.
func TestReloadAddsAScope(t *testing.T) {
	h := newHarness(t)
	api := events.MustParseScope("acme.prod.api")
	rt := processRuntime(t, h.node, h.dataDir)
	opts := h.options(rt)
	a := h.open(opts)
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, nil)})
	waitConverged(t, a, scopeWeb, rev, 1)
	h.appendTo(api, &events.Deployed{Spec: demoSpec(t, 1, nil)})
	apiRev := h.appendTo(api, &events.Scaled{Replicas: 2})

	n := opts.Node
	n.Scopes = []events.Scope{api, scopeWeb}
	if err := a.Reload(n); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, a, api, apiRev, 2)
	waitConverged(t, a, scopeWeb, rev, 1)

	n.Name = "other"
	if err := a.Reload(n); err == nil || !strings.Contains(err.Error(), "restart the agent") {
		t.Errorf("renaming on reload: %v", err)
	}
}

// The agent keeps going across a NATS restart.
func TestNATSRestart(t *testing.T) {
	h := newHarness(t)
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt))
	rev := h.append(&events.Deployed{Spec: demoSpec(t, 1, nil)})
	waitConverged(t, a, scopeWeb, rev, 1)

	h.nats.Restart()
	nc, err := store.Connect(store.ConnectOptions{URL: h.nats.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := store.Open(context.Background(), nc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	rev = h.append(&events.Scaled{Replicas: 2})
	waitConverged(t, a, scopeWeb, rev, 2)
}
