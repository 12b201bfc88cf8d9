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
	return &events.Event{Scope: scopeWeb, Revision: rev, Time: time.Unix(int64(rev), 0).UTC(), Data: p}
}

func TestBookFoldsDeduplicatesAndSkips(t *testing.T) {
	b := newBook("n1", []events.Scope{scopeWeb})
	web := events.ScopeSubject(scopeWeb, events.KindDeployed)
	deploy := encode(t, scopeEvent(1, &events.Deployed{Spec: events.Spec{Image: "web:1", Replicas: 2}}))
	scale := encode(t, scopeEvent(2, &events.Scaled{Replicas: 3}))

	if _, ok := b.desired(scopeWeb); ok {
		t.Fatal("an unsynced scope must not be known")
	}
	if res := b.apply(1, web, deploy); !res.changed || res.skipped != nil {
		t.Fatalf("deploy: %+v", res)
	}
	if res := b.apply(2, web, []byte("garbage")); res.changed || !errors.As(res.skipped, new(events.Unreadable)) || res.scope != scopeWeb {
		t.Fatalf("garbage: %+v", res)
	}
	if res := b.apply(3, web, scale); !res.changed {
		t.Fatalf("scale: %+v", res)
	}
	// A replay (consumer recreated from the start) applies nothing twice
	// and does not report old garbage again.
	for seq, data := range map[uint64][]byte{1: deploy, 2: []byte("garbage"), 3: scale} {
		if res := b.apply(seq, web, data); res.changed || !errors.Is(res.skipped, errDuplicate) {
			t.Fatalf("replay of %d: %+v", seq, res)
		}
	}
	gap := encode(t, scopeEvent(9, &events.Scaled{Replicas: 1}))
	if res := b.apply(4, web, gap); res.changed || res.skipped == nil || !strings.Contains(res.skipped.Error(), "expected 3") {
		t.Fatalf("gap: %+v", res)
	}
	other := encode(t, &events.Event{Scope: events.MustParseScope("acme.prod.api"), Revision: 1, Data: &events.Removed{}})
	if res := b.apply(5, events.ScopeSubject(events.MustParseScope("acme.prod.api"), events.KindRemoved), other); res.skipped == nil {
		t.Fatalf("foreign scope applied: %+v", res)
	}
	drain := encode(t, &events.Event{Node: "n1", Revision: 1, Data: &events.NodeDrained{Reason: "r"}})
	if res := b.apply(6, events.NodeSubject("n1", events.KindNodeDrained), drain); !res.node || !b.nodeSt.Drained {
		t.Fatalf("drain: %+v", res)
	}
	otherNode := encode(t, &events.Event{Node: "n2", Revision: 2, Data: &events.NodeUndrained{}})
	if res := b.apply(7, events.NodeSubject("n2", events.KindNodeUndrained), otherNode); res.skipped == nil || !b.nodeSt.Drained {
		t.Fatalf("another node's event applied: %+v", res)
	}

	b.markSynced()
	d, ok := b.desired(scopeWeb)
	if !ok || d.Revision != 2 || d.Spec.Replicas != 3 || d.Spec.Image != "web:1" {
		t.Fatalf("desired: %+v %v", d, ok)
	}

	// Through the reference file and back: the same desired state, and a
	// rollback can still reach revision 1.
	b.markComplete()
	path := filepath.Join(t.TempDir(), "ref.json")
	if err := writeReference(path, b.reference(nil, time.Now())); err != nil {
		t.Fatal(err)
	}
	ref, err := loadReference(path, "n1")
	if err != nil || ref == nil || ref.Sequence != 7 || ref.High != 7 {
		t.Fatalf("load: %+v %v", ref, err)
	}
	b2, err := bookFromReference(ref, []events.Scope{scopeWeb})
	if err != nil {
		t.Fatal(err)
	}
	d2, ok := b2.desired(scopeWeb)
	if !ok || d2.Revision != 2 || d2.Spec.Replicas != 3 || !b2.complete() || !b2.nodeSt.Drained {
		t.Fatalf("reloaded: %+v %v complete=%v", d2, ok, b2.complete())
	}
	rb := encode(t, scopeEvent(3, &events.RolledBack{To: 1}))
	if res := b2.apply(8, web, rb); !res.changed {
		t.Fatalf("rollback: %+v", res)
	}
	if d3, _ := b2.desired(scopeWeb); d3.Spec.Replicas != 2 {
		t.Fatalf("rolled back to %+v", d3.Spec)
	}

	// A scope added later is not complete: the consumer must replay.
	api := events.MustParseScope("acme.prod.api")
	b3, _ := bookFromReference(ref, []events.Scope{scopeWeb, api})
	if b3.complete() {
		t.Fatal("a book with a new scope claims to be complete")
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
		"truncated":    `{"version":1,"node":"n1","scopes":{`,
		"other node":   `{"version":1,"node":"n2"}`,
		"newer format": `{"version":2,"node":"n1"}`,
		"null scope":   `{"version":1,"node":"n1","scopes":{"a.b.c":null}}`,
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
	bad := `{"version":1,"node":"n1","scopes":{"acme.prod.web":{"complete":true,"synced":true,"events":["not an event"]}}}`
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
