package events

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestCanaryAndTrafficValidate(t *testing.T) {
	spec := Spec{Image: "web:2", Replicas: 1, Port: 8080}
	good := &Analysis{Steps: []int{10, 25, 50, 100}, Interval: Duration(time.Minute), MaxErrorRate: 0.01, MaxP99: Duration(300 * time.Millisecond), MinRequests: 200}
	with := func(f func(a *Analysis)) *Analysis { a := *good; f(&a); return &a }
	tests := []struct {
		name string
		p    Payload
		ok   bool
	}{
		{"start", &CanaryStarted{Spec: spec, Share: 10, Replicas: 1}, true},
		{"start with auto", &CanaryStarted{Spec: spec, Share: 10, Replicas: 1, Auto: good}, true},
		{"share over 100", &CanaryStarted{Spec: spec, Share: 101, Replicas: 1}, false},
		{"no canary replicas", &CanaryStarted{Spec: spec, Share: 10}, false},
		{"bad spec", &CanaryStarted{Spec: Spec{Replicas: 1}, Share: 10, Replicas: 1}, false},
		{"steps fall", &CanaryShifted{Share: 10, Auto: with(func(a *Analysis) { a.Steps = []int{50, 10} })}, false},
		{"step over 100", &CanaryShifted{Share: 10, Auto: with(func(a *Analysis) { a.Steps = []int{10, 200} })}, false},
		{"interval too short", &CanaryShifted{Share: 10, Auto: with(func(a *Analysis) { a.Interval = Duration(time.Millisecond) })}, false},
		{"error rate NaN", &CanaryShifted{Share: 10, Auto: with(func(a *Analysis) { a.MaxErrorRate = math.NaN() })}, false},
		{"automatic without figures", &CanaryShifted{Share: 25, Automatic: true}, false},
		{"automatic sets no policy", &CanaryShifted{Share: 25, Automatic: true, Auto: good, Figures: &Figures{}}, false},
		{"automatic abort", &CanaryAborted{Automatic: true, Reason: "canary 5xx 4.8% over 612 requests > 1%", Figures: &Figures{Requests: 612, Errors: 29}}, true},
		{"more errors than requests", &CanaryAborted{Figures: &Figures{Requests: 1, Errors: 2}}, false},
		{"reason with a newline", &CanaryPromoted{Reason: "a\nb"}, false},
		{"pause", &Paused{Max: Duration(30 * time.Second)}, true},
		{"pause of nothing", &Paused{}, false},
		{"pause too long", &Paused{Max: Duration(2 * time.Hour)}, false},
		{"maintenance", &MaintenanceOn{Message: "Back at 10:00.\nSorry."}, true},
		{"maintenance with an escape", &MaintenanceOn{Message: "\x1b[2J"}, false},
		{"maintenance not UTF-8", &MaintenanceOn{Message: "\xff"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var fe *FieldError
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case !tt.ok && !errors.As(err, &fe):
				t.Fatalf("Validate() = %v, want a *FieldError", err)
			}
		})
	}
}

func TestAnalysisNext(t *testing.T) {
	a := &Analysis{Steps: []int{10, 25, 50, 100}}
	for _, c := range []struct{ share, next int }{{0, 10}, {10, 25}, {30, 50}, {50, 100}, {100, 0}} {
		n, ok := a.Next(c.share)
		if n != c.next || ok != (c.next != 0) {
			t.Errorf("Next(%d) = %d, %v; want %d", c.share, n, ok, c.next)
		}
	}
}

func TestReportTrafficValidate(t *testing.T) {
	r := &BackendsReport{Node: "n1", Scope: MustParseScope("acme.prod.web"), Backends: []string{"127.0.0.1:1", "127.0.0.1:2"},
		Slots: map[string]int{"127.0.0.1:1": 0}, Canary: map[string]int{"127.0.0.1:2": 0},
		Traffic: &Traffic{Canary: &CanaryTraffic{ID: 4, Share: 10}}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	r.Canary = map[string]int{"127.0.0.1:1": 0}
	if err := r.Validate(); err == nil {
		t.Fatal("a backend both stable and canary was accepted")
	}
	r.Canary = nil
	r.Traffic.Canary.ID = 0
	if err := r.Validate(); err == nil {
		t.Fatal("a canary with no ID was accepted")
	}
}

func TestFiguresString(t *testing.T) {
	f := &Figures{Requests: 80, Errors: 4, P99: Duration(6349 * time.Microsecond), Window: Duration(6349359351), Balancers: 1}
	if got, want := f.String(), "80 requests, 5xx 5.0%, p99 6.3ms over 6.3s from 1 balancer"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	f.Balancers = 2
	if got, want := f.Span(), "over 6.3s from 2 balancers"; got != want {
		t.Errorf("Span() = %q, want %q", got, want)
	}
}
