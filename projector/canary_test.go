package projector_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
)

func canaryOf(image string, share int) *events.CanaryStarted {
	return &events.CanaryStarted{Spec: events.Spec{Image: image, Replicas: 3, Port: 8080}, Share: share, Replicas: 1}
}

var analysis = &events.Analysis{Steps: []int{10, 50, 100}, Interval: events.Duration(time.Minute), MaxErrorRate: 0.01, MinRequests: 200}

func figures() *events.Figures {
	return &events.Figures{Requests: 300, Errors: 1, Window: events.Duration(time.Minute), Balancers: 1}
}

func TestCanaryFold(t *testing.T) {
	tests := []struct {
		name      string
		events    []*events.Event
		wantImage string // the stable spec's
		canary    string // the canary's image, "" for none
		share     int
		auto      bool
		skips     int
	}{
		{name: "start", events: history(deployed("web:1", 3), canaryOf("web:2", 10)), wantImage: "web:1", canary: "web:2", share: 10},
		{name: "needs a deploy", events: history(canaryOf("web:2", 10)), skips: 1},
		{name: "one at a time", events: history(deployed("web:1", 3), canaryOf("web:2", 10), canaryOf("web:3", 10)), wantImage: "web:1", canary: "web:2", share: 10, skips: 1},
		{name: "shift", events: history(deployed("web:1", 3), canaryOf("web:2", 10), &events.CanaryShifted{Share: 50}), wantImage: "web:1", canary: "web:2", share: 50},
		{name: "promote", events: history(deployed("web:1", 3), canaryOf("web:2", 10), &events.CanaryPromoted{}), wantImage: "web:2"},
		{name: "abort", events: history(deployed("web:1", 3), canaryOf("web:2", 10), &events.CanaryAborted{}), wantImage: "web:1"},
		{name: "shift without canary", events: history(deployed("web:1", 3), &events.CanaryShifted{Share: 50}), wantImage: "web:1", skips: 1},
		{name: "deploy ends it", events: history(deployed("web:1", 3), canaryOf("web:2", 10), deployed("web:3", 3)), wantImage: "web:3"},
		{name: "rollback ends it", events: history(deployed("web:1", 3), deployed("web:2", 3), canaryOf("web:3", 10), &events.RolledBack{To: 1}), wantImage: "web:1"},
		{name: "remove ends it", events: history(deployed("web:1", 3), canaryOf("web:2", 10), &events.Removed{}), wantImage: "web:1"},
		{name: "scale keeps it", events: history(deployed("web:1", 3), canaryOf("web:2", 10), &events.Scaled{Replicas: 5}), wantImage: "web:1", canary: "web:2", share: 10},
		{
			name:      "auto set by a hand, stepped by the analysis",
			events:    history(deployed("web:1", 3), canaryOf("web:2", 0), &events.CanaryShifted{Share: 10, Auto: analysis}, &events.CanaryShifted{Share: 50, Automatic: true, Figures: figures()}),
			wantImage: "web:1", canary: "web:2", share: 50, auto: true,
		},
		{
			name:      "a hand's shift stops the analysis, and a later automatic step is skipped",
			events:    history(deployed("web:1", 3), canaryOf("web:2", 0), &events.CanaryShifted{Share: 10, Auto: analysis}, &events.CanaryShifted{Share: 20}, &events.CanaryPromoted{Automatic: true, Figures: figures()}),
			wantImage: "web:1", canary: "web:2", share: 20, skips: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, skips := projector.FoldEvents(web, tt.events)
			st := h.State()
			if len(skips) != tt.skips {
				t.Fatalf("skips = %v, want %d", skips, tt.skips)
			}
			if st.Spec != nil && st.Spec.Image != tt.wantImage || st.Spec == nil && tt.wantImage != "" {
				t.Errorf("stable image = %v, want %q", st.Spec, tt.wantImage)
			}
			if tt.canary == "" {
				if st.Canary != nil || st.Traffic() != nil {
					t.Fatalf("canary = %+v, traffic %+v, want none", st.Canary, st.Traffic())
				}
				return
			}
			if st.Canary == nil || st.Canary.Spec.Image != tt.canary || st.Canary.Share != tt.share || (st.Canary.Auto != nil) != tt.auto {
				t.Fatalf("canary = %+v, want %s at %d%% auto=%v", st.Canary, tt.canary, tt.share, tt.auto)
			}
			if tr := st.Traffic(); tr == nil || tr.Canary.ID != st.Canary.ID || tr.Canary.Share != tt.share {
				t.Errorf("traffic = %+v", tr)
			}
		})
	}
}

func TestCanaryNeedsADeploy(t *testing.T) {
	h, _ := projector.FoldEvents(web, nil)
	err := h.Check(&events.Event{Kind: events.KindCanaryStarted, Scope: web, Data: canaryOf("web:2", 10)})
	if !errors.Is(err, projector.ErrNoDeploy) {
		t.Fatalf("err = %v, want ErrNoDeploy", err)
	}
	h, _ = projector.FoldEvents(web, history(deployed("web:1", 1)))
	if err := h.Check(&events.Event{Kind: events.KindCanaryAborted, Scope: web, Data: &events.CanaryAborted{}}); !errors.Is(err, projector.ErrNoCanary) {
		t.Fatalf("err = %v, want ErrNoCanary", err)
	}
}

func TestPauseAndMaintenanceFold(t *testing.T) {
	h, skips := projector.FoldEvents(web, history(
		deployed("web:1", 1),
		&events.Paused{Max: events.Duration(30 * time.Second)},
		&events.MaintenanceOn{Message: "back at 10:00"},
		deployed("web:2", 1), // a deploy leaves both standing
	))
	if len(skips) != 0 {
		t.Fatal(skips)
	}
	tr := h.State().Traffic()
	if tr == nil || tr.Paused == nil || time.Duration(tr.Paused.Max) != 30*time.Second || tr.Maintenance == nil || tr.Maintenance.Message != "back at 10:00" {
		t.Fatalf("traffic = %+v", tr)
	}
	_, skips = projector.FoldEvents(web, history(deployed("web:1", 1), &events.Resumed{}, &events.MaintenanceOff{}))
	if len(skips) != 2 {
		t.Fatalf("resume of an unpaused scope and off without maintenance: skips = %v, want 2", skips)
	}
}
