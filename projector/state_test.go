package projector_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

var web = events.MustParseScope("acme.prod.web")

// history numbers payloads as revisions 1, 2, 3…
func history(payloads ...events.Payload) []*events.Event {
	out := make([]*events.Event, len(payloads))
	for i, p := range payloads {
		out[i] = &events.Event{ID: "e", Kind: p.Kind(), Scope: web, Revision: uint64(i + 1), Time: time.Unix(int64(i), 0), Data: p}
	}
	return out
}

func deployed(image string, replicas int) *events.Deployed {
	return &events.Deployed{Spec: events.Spec{Image: image, Replicas: replicas, Port: 8080}}
}

func TestFold(t *testing.T) {
	tests := []struct {
		name      string
		events    []*events.Event
		wantRev   uint64
		wantImage string
		wantRepl  int
		wantEnv   map[string]string
		removed   bool
		skips     int
	}{
		{name: "empty", events: nil, wantRev: 0},
		{name: "deploy", events: history(deployed("web:1", 3)), wantRev: 1, wantImage: "web:1", wantRepl: 3},
		{name: "scale", events: history(deployed("web:1", 3), &events.Scaled{Replicas: 5}), wantRev: 2, wantImage: "web:1", wantRepl: 5},
		{
			name:    "env set then unset",
			events:  history(deployed("web:1", 1), &events.EnvChanged{Set: map[string]string{"A": "1", "B": "2"}}, &events.EnvChanged{Unset: []string{"A"}}),
			wantRev: 3, wantImage: "web:1", wantRepl: 1, wantEnv: map[string]string{"B": "2"},
		},
		{
			name:    "rollback restores the spec at the revision",
			events:  history(deployed("web:1", 3), &events.Scaled{Replicas: 5}, &events.EnvChanged{Set: map[string]string{"MODE": "fast"}}, &events.RolledBack{To: 1}),
			wantRev: 4, wantImage: "web:1", wantRepl: 3,
		},
		{
			name:    "rollback to a later deploy",
			events:  history(deployed("web:1", 3), deployed("web:2", 3), deployed("web:3", 2), &events.RolledBack{To: 2}),
			wantRev: 4, wantImage: "web:2", wantRepl: 3,
		},
		{name: "remove", events: history(deployed("web:1", 3), &events.Removed{}), wantRev: 2, wantImage: "web:1", wantRepl: 3, removed: true},
		{name: "deploy after remove revives", events: history(deployed("web:1", 3), &events.Removed{}, deployed("web:2", 1)), wantRev: 3, wantImage: "web:2", wantRepl: 1},
		{
			name:    "rollback over a remove restores the removal's spec",
			events:  history(deployed("web:1", 3), &events.Removed{}, deployed("web:2", 1), &events.RolledBack{To: 1}),
			wantRev: 4, wantImage: "web:1", wantRepl: 3,
		},
		{name: "scale before deploy is skipped", events: history(&events.Scaled{Replicas: 2}), wantRev: 1, skips: 1},
		{
			name:    "rollback to the future is skipped",
			events:  history(deployed("web:1", 3), &events.RolledBack{To: 7}),
			wantRev: 2, wantImage: "web:1", wantRepl: 3, skips: 1,
		},
		{
			name:    "a skipped event does not block the ones after it",
			events:  history(deployed("web:1", 3), &events.RolledBack{To: 9}, &events.Scaled{Replicas: 4}),
			wantRev: 3, wantImage: "web:1", wantRepl: 4, skips: 1,
		},
		{
			name: "revision gap is skipped",
			events: func() []*events.Event {
				evs := history(deployed("web:1", 3), &events.Scaled{Replicas: 4})
				evs[1].Revision = 3
				return evs
			}(),
			wantRev: 1, wantImage: "web:1", wantRepl: 3, skips: 1,
		},
		{
			name: "other scope is skipped",
			events: func() []*events.Event {
				evs := history(deployed("web:1", 3))
				evs[0].Scope = events.MustParseScope("acme.prod.api")
				return evs
			}(),
			skips: 1,
		},
		{
			name:    "non-scope event is skipped",
			events:  append(history(deployed("web:1", 2)), &events.Event{Kind: events.KindNodeDrained, Scope: web, Revision: 2, Data: &events.NodeDrained{}}),
			wantRev: 2, wantImage: "web:1", wantRepl: 2, skips: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, skips := projector.FoldEvents(web, tt.events)
			st := h.State()
			if st.Revision != tt.wantRev {
				t.Errorf("revision %d, want %d", st.Revision, tt.wantRev)
			}
			if len(skips) != tt.skips {
				t.Errorf("%d skips, want %d: %v", len(skips), tt.skips, skips)
			}
			if st.Removed != tt.removed {
				t.Errorf("removed %v, want %v", st.Removed, tt.removed)
			}
			if tt.wantImage == "" {
				if st.Spec != nil {
					t.Errorf("spec %+v, want none", st.Spec)
				}
				return
			}
			if st.Spec == nil {
				t.Fatal("no spec")
			}
			if st.Spec.Image != tt.wantImage || st.Spec.Replicas != tt.wantRepl {
				t.Errorf("spec %s×%d, want %s×%d", st.Spec.Image, st.Spec.Replicas, tt.wantImage, tt.wantRepl)
			}
			if diff := cmp.Diff(tt.wantEnv, st.Spec.Env, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFoldIsDeterministicAndDoesNotAlias(t *testing.T) {
	evs := history(deployed("web:1", 3), &events.EnvChanged{Set: map[string]string{"A": "1"}}, &events.Scaled{Replicas: 4})
	a, _ := projector.FoldEvents(web, evs)
	b, _ := projector.FoldEvents(web, evs)
	if a.State().Spec.Replicas != b.State().Spec.Replicas || a.State().Spec.Env["A"] != "1" {
		t.Fatal("folds differ")
	}
	// Earlier revisions are not changed by later events.
	at1, err := a.At(1)
	if err != nil {
		t.Fatal(err)
	}
	if at1.Spec.Replicas != 3 || len(at1.Spec.Env) != 0 {
		t.Fatalf("revision 1 changed: %+v", at1.Spec)
	}
	// The event's own spec is not aliased by the fold.
	evs[0].Data.(*events.Deployed).Spec.Replicas = 99
	if at1.Spec.Replicas != 3 {
		t.Fatal("fold aliases the event's spec")
	}
	if _, err := a.At(4); !errors.Is(err, projector.ErrNoRevision) {
		t.Fatalf("At(4): %v", err)
	}
}

func TestPreviousRevision(t *testing.T) {
	tests := []struct {
		name   string
		events []*events.Event
		want   uint64
		ok     bool
	}{
		{name: "nothing", events: history(deployed("web:1", 1)), ok: false},
		{name: "previous deploy", events: history(deployed("web:1", 1), deployed("web:2", 1)), want: 1, ok: true},
		{name: "scale counts as a change", events: history(deployed("web:1", 1), &events.Scaled{Replicas: 3}), want: 1, ok: true},
		{name: "skips the removal", events: history(deployed("web:1", 1), &events.Removed{}, deployed("web:2", 1)), want: 1, ok: true},
		{name: "after a rollback, back again", events: history(deployed("web:1", 1), deployed("web:2", 1), &events.RolledBack{To: 1}), want: 2, ok: true},
		{name: "after a remove, the spec before it", events: history(deployed("web:1", 1), deployed("web:2", 1), &events.Scaled{Replicas: 3}, &events.Removed{}), want: 3, ok: true},
		{name: "after a remove of the first deploy", events: history(deployed("web:1", 1), &events.Removed{}), want: 1, ok: true},
		{name: "after two removes", events: history(deployed("web:1", 1), &events.Removed{}, &events.Removed{}), want: 1, ok: true},
		{name: "names the revision that made the spec, not one that kept it", events: history(deployed("web:1", 1), &events.RolledBack{To: 99}, deployed("web:2", 1)), want: 1, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := projector.FoldEvents(web, tt.events)
			got, ok := h.PreviousRevision()
			if got != tt.want || ok != tt.ok {
				t.Fatalf("PreviousRevision() = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// A change to a scope never deployed is skipped with ErrNoDeploy that
// errors.Is finds, from the fold and from Check alike.
func TestErrNoDeployIsWrapped(t *testing.T) {
	h := projector.NewHistory(web)
	for _, d := range []events.Payload{&events.Scaled{Replicas: 2}, &events.EnvChanged{Set: map[string]string{"A": "1"}}} {
		e := history(d)[0]
		if err := h.Check(e); !errors.Is(err, projector.ErrNoDeploy) {
			t.Errorf("Check(%T) = %v, want ErrNoDeploy", d, err)
		}
	}
	_, skips := projector.FoldEvents(web, history(&events.Scaled{Replicas: 2}))
	if len(skips) != 1 || !errors.Is(skips[0], projector.ErrNoDeploy) {
		t.Fatalf("skips = %v, want one that is ErrNoDeploy", skips)
	}
}
