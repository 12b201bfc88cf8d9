package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/natstest"
)

// Invariant 7 and 8 at the agent: messages whose body disagrees with their
// subject, or that claim a revision they do not hold, change nothing that
// runs, whichever scope they name; the next publish is applied.
func TestHostileMessagesChangeNothing(t *testing.T) {
	h := newHarness(t)
	api := events.MustParseScope("acme.prod.api")
	rt := processRuntime(t, h.node, h.dataDir)
	a := h.open(h.options(rt, scopeWeb, api))
	webRev := h.append(&events.Deployed{Spec: demoSpec(t, 1, nil)})
	apiRev := h.appendTo(api, &events.Deployed{Spec: demoSpec(t, 1, nil)})
	waitConverged(t, a, scopeWeb, webRev, 1)
	waitConverged(t, a, api, apiRev, 1)

	js := h.rawJS()
	ctx := context.Background()
	raw := func(subject string, e *events.Event) {
		t.Helper()
		if e.ID == "" {
			e.ID = fmt.Sprintf("hostile-%d", time.Now().UnixNano())
		}
		e.Schema = 1
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, subject, data); err != nil {
			t.Fatal(err)
		}
	}
	webScaled := events.ScopeSubject(scopeWeb, events.KindScaled, "ci")
	// A body for acme.prod.api on web's subject.
	raw(webScaled, &events.Event{Scope: api, Revision: apiRev + 1, Actor: "ci", Data: &events.Scaled{Replicas: 3}})
	// A kind that disagrees with its subject.
	raw(events.ScopeSubject(scopeWeb, events.KindDeployed, "ci"), &events.Event{Scope: scopeWeb, Revision: webRev + 2, Actor: "ci", Data: &events.Scaled{Replicas: 3}})
	// A readable event that claims revision 99, as the scope's last message.
	raw(webScaled, &events.Event{Scope: scopeWeb, Revision: 99, Actor: "ci", Data: &events.Scaled{Replicas: 3}})
	// Another actor in the body than on the subject.
	raw(webScaled, &events.Event{Scope: scopeWeb, Revision: webRev + 4, Actor: "mallory", Data: &events.Scaled{Replicas: 3}})
	// A drain of another node on this node's subject.
	raw(events.NodeSubject(h.node, events.KindNodeDrained, "ci"), &events.Event{Node: "other-node", Revision: 1, Actor: "ci", Data: &events.NodeDrained{}})

	natstest.Eventually(t, 10*time.Second, func() error {
		if st := scopeStatus(a, scopeWeb); st.Desired != webRev+4 || !strings.Contains(st.Error, "disagrees") {
			return fmt.Errorf("web: desired %d, error %q", st.Desired, st.Error)
		}
		return nil
	})
	if st := scopeStatus(a, api); st.Desired != apiRev || len(st.Replicas) != 1 {
		t.Fatalf("api was changed through web's subject: %+v", st)
	}
	if st := scopeStatus(a, scopeWeb); len(st.Replicas) != 1 {
		t.Fatalf("web was changed: %+v", st)
	}
	if a.Status().Drained {
		t.Fatal("a drain for another node drained this one")
	}

	// The next publish goes on top of the stray messages and is applied.
	rev := h.append(&events.Scaled{Replicas: 2})
	if rev != webRev+5 {
		t.Fatalf("next publish got revision %d, want %d", rev, webRev+5)
	}
	if st := waitConverged(t, a, scopeWeb, rev, 2); st.Error != "" {
		t.Errorf("error not cleared by the next good event: %q", st.Error)
	}

	// The rejected drain is reported on the node until its next good event.
	if !strings.Contains(a.Status().Error, "disagrees") {
		t.Errorf("node error %q, want the rejected drain", a.Status().Error)
	}
	ctx2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Drain(ctx2, "test"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if st := a.Status(); !st.Drained || st.Error != "" {
			return fmt.Errorf("drained %v, node error %q", st.Drained, st.Error)
		}
		return nil
	})
}
