package nodeagent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/atomicfile"
)

func encode(t *testing.T, e *events.Event) []byte {
	t.Helper()
	if e.ID == "" {
		e.ID = "id-" + string(e.Kind) + "-" + time.Now().Format("150405.000000000")
	}
	b, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scopeEvent(rev uint64, p events.Payload) *events.Event {
	return &events.Event{Scope: scopeWeb, Revision: rev, Time: time.Unix(int64(rev), 0).UTC(), Actor: "ci", Data: p}
}

func msgAt(seq uint64, subject string, data []byte) events.Message {
	return events.Message{Stream: events.EventsStream, Subject: subject, Sequence: seq, Time: time.Unix(1000, 0), Data: data}
}

func TestBookFoldsDeduplicatesAndSkips(t *testing.T) {
	b := newDesiredBook("n1", []events.Scope{scopeWeb})
	deploySubj := events.ScopeSubject(scopeWeb, events.KindDeployed, "ci")
	scaleSubj := events.ScopeSubject(scopeWeb, events.KindScaled, "ci")
	deploy := encode(t, scopeEvent(1, &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 2}}))
	scale := encode(t, scopeEvent(3, &events.Scaled{Replicas: 3}))

	if _, ok := b.desired(scopeWeb); ok {
		t.Fatal("an unsynced scope must not be known")
	}
	if res := b.apply(msgAt(1, deploySubj, deploy)); !res.changed || res.skipped != nil {
		t.Fatalf("deploy: %+v", res)
	}
	// Garbage on the scope's subject is rejected, and holds revision 2.
	if res := b.apply(msgAt(2, scaleSubj, []byte("garbage"))); res.changed || !errors.Is(res.skipped, events.ErrRejected) || res.scope != scopeWeb {
		t.Fatalf("garbage: %+v", res)
	}
	if res := b.apply(msgAt(3, scaleSubj, scale)); !res.changed {
		t.Fatalf("scale: %+v", res)
	}
	// A replay applies nothing twice and does not report old garbage again.
	for seq, data := range map[uint64][]byte{1: deploy, 2: []byte("garbage"), 3: scale} {
		if res := b.apply(msgAt(seq, scaleSubj, data)); res.changed || !errors.Is(res.skipped, errDuplicate) {
			t.Fatalf("replay of %d: %+v", seq, res)
		}
	}
	// A body that claims a revision it does not hold is rejected, and
	// holds revision 4.
	gap := encode(t, scopeEvent(9, &events.Scaled{Replicas: 1}))
	if res := b.apply(msgAt(4, scaleSubj, gap)); res.changed || !errors.Is(res.skipped, events.ErrWrongRevision) {
		t.Fatalf("gap: %+v", res)
	}
	api := events.MustParseScope("acme.prod.api")
	other := encode(t, &events.Event{Scope: api, Revision: 1, Actor: "ci", Data: &events.Removed{}})
	if res := b.apply(msgAt(5, events.ScopeSubject(api, events.KindRemoved, "ci"), other)); res.skipped == nil {
		t.Fatalf("foreign scope applied: %+v", res)
	}
	// A body for another scope on web's subject changes neither.
	if res := b.apply(msgAt(6, events.ScopeSubject(scopeWeb, events.KindRemoved, "ci"), other)); !errors.Is(res.skipped, events.ErrDisagrees) {
		t.Fatalf("body for another scope: %+v", res)
	}
	drain := encode(t, &events.Event{Node: "n1", Revision: 1, Actor: "ci", Data: &events.NodeDrained{Reason: "r"}})
	if res := b.apply(msgAt(7, events.NodeSubject("n1", events.KindNodeDrained, "ci"), drain)); !res.node || !b.nodeSt.Drained {
		t.Fatalf("drain: %+v", res)
	}
	otherNode := encode(t, &events.Event{Node: "n2", Revision: 2, Actor: "ci", Data: &events.NodeUndrained{}})
	if res := b.apply(msgAt(8, events.NodeSubject("n1", events.KindNodeUndrained, "ci"), otherNode)); !errors.Is(res.skipped, events.ErrDisagrees) || !b.nodeSt.Drained {
		t.Fatalf("another node's event on this node's subject applied: %+v", res)
	}

	b.markSynced(scopeWeb)
	d, ok := b.desired(scopeWeb)
	if !ok || d.Revision != 5 || d.Spec.Replicas != 3 || d.Spec.Image != "web:1" {
		t.Fatalf("desired: %+v %v", d, ok)
	}

	// Through the reference file and back: the same desired state and head,
	// and a rollback can still reach revision 1.
	path := filepath.Join(t.TempDir(), "ref.json")
	if err := writeReference(path, b.reference(nil, time.Now())); err != nil {
		t.Fatal(err)
	}
	ref, err := loadReference(path, "n1")
	if err != nil || ref == nil || ref.Scopes[scopeWeb.String()].Sequence != 6 || ref.Scopes[scopeWeb.String()].Revision != 5 || ref.NodeLog.Sequence != 8 {
		t.Fatalf("load: %+v %v", ref, err)
	}
	b2, err := bookFromReference(ref, []events.Scope{scopeWeb})
	if err != nil {
		t.Fatal(err)
	}
	d2, ok := b2.desired(scopeWeb)
	if !ok || d2.Revision != 5 || d2.Spec.Replicas != 3 || b2.after(scopeWeb).Sequence != 6 || !b2.nodeSt.Drained || b2.nodeAfter().Sequence != 8 {
		t.Fatalf("reloaded: %+v %v after=%+v", d2, ok, b2.after(scopeWeb))
	}
	rb := encode(t, scopeEvent(6, &events.RolledBack{To: 1}))
	if res := b2.apply(msgAt(9, events.ScopeSubject(scopeWeb, events.KindRolledBack, "ci"), rb)); !res.changed {
		t.Fatalf("rollback: %+v", res)
	}
	if d3, _ := b2.desired(scopeWeb); d3.Spec.Replicas != 2 || d3.Revision != 6 {
		t.Fatalf("rolled back to %+v", d3)
	}

	// A scope added later starts from the beginning of the stream.
	b3, _ := bookFromReference(ref, []events.Scope{scopeWeb, api})
	if b3.after(api).Sequence != 0 {
		t.Fatalf("a new scope starts after %+v", b3.after(api))
	}
	if _, ok := b3.desired(api); ok {
		t.Fatal("a new scope is known before it was read")
	}
}

func TestLoadReference(t *testing.T) {
	dir := t.TempDir()
	missing, err := loadReference(filepath.Join(dir, "none.json"), "n1")
	if missing != nil || err != nil {
		t.Fatalf("missing file: %v %v", missing, err)
	}
	for name, content := range map[string]string{
		"truncated":    `{"version":2,"node":"n1","scopes":{`,
		"other node":   `{"version":2,"node":"n2"}`,
		"older format": `{"version":1,"node":"n1"}`,
		"newer format": `{"version":3,"node":"n1"}`,
		"null scope":   `{"version":2,"node":"n1","scopes":{"a.b.c":null}}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadReference(path, "n1"); !errors.Is(err, ErrCorruptReference) {
			t.Errorf("%s: got %v, want ErrCorruptReference", name, err)
		}
	}
	// Events that no longer fold make the file untrustworthy too.
	bad := `{"version":2,"node":"n1","scopes":{"acme.prod.web":{"revision":1,"sequence":1,"synced":true,"events":["not an event"]}}}`
	path := filepath.Join(dir, "bad-events")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := loadReference(path, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bookFromReference(ref, []events.Scope{scopeWeb}); !errors.Is(err, ErrCorruptReference) {
		t.Errorf("bad events: got %v", err)
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "ref.json")
	for _, content := range []string{"one", "two"} {
		if err := atomicfile.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if string(got) != "two" || len(entries) != 1 {
		t.Fatalf("content %q, dir %v", got, entries)
	}
}
