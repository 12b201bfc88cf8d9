package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
)

// The canary and traffic writes, as 'hoist deploy --canary', 'hoist
// canary', 'promote', 'abort', 'pause', 'resume' and 'maintenance': the
// same builders of package change, so the same refusals.

// canaryBody is a deploy's "canary": the share of new requests it gets,
// its replicas per serving node (1 when left out), stickiness, and an
// analysis.
type canaryBody struct {
	Share    *int            `json:"share"`
	Replicas int             `json:"replicas"`
	Sticky   bool            `json:"sticky"`
	Auto     json.RawMessage `json:"auto"`
}

// startCanary is a deploy with a canary: canary_started with the spec the
// deploy would make, which may change env alone.
func startCanary(sc events.Scope, spec *change.SpecChange, raw json.RawMessage) (events.Kind, change.Builder, error) {
	body := canaryBody{Replicas: 1}
	if err := decodeStrict(raw, &body, "canary."); err != nil {
		return "", nil, err
	}
	if body.Share == nil {
		return "", nil, badRequest("canary.share", `canary.share is missing: want {"canary": {"share": 10}}`)
	}
	if err := spec.CheckCanary(); err != nil {
		return "", nil, err
	}
	auto, err := decodeAnalysis(body.Auto, "canary.auto.")
	if err != nil {
		return "", nil, err
	}
	split := events.CanaryStarted{Share: *body.Share, Replicas: body.Replicas, Sticky: body.Sticky, Auto: auto}
	if err := split.ValidateSplit(); err != nil {
		return "", nil, underField("canary.", err) // its replicas are not the spec's
	}
	o := change.CanaryOptions{Share: split.Share, Replicas: split.Replicas, Sticky: split.Sticky, Auto: split.Auto}
	return built(events.KindCanaryStarted)(change.Canary(sc, spec.Apply, o))
}

// decodeAnalysis reads an "auto" object over events.DefaultAnalysis, so
// that what it leaves out has the CLI's defaults; nil when raw is absent.
func decodeAnalysis(raw json.RawMessage, prefix string) (*events.Analysis, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	a := events.DefaultAnalysis() // named steps replace its steps: JSON resets a slice
	if err := decodeStrict(raw, &a, prefix); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, underField(prefix, err)
	}
	return &a, nil
}

// underField names a validation error's field as the body holds it: the
// "steps" of an analysis is "auto.steps".
func underField(prefix string, err error) error {
	var fe *events.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return &events.FieldError{Field: prefix + fe.Field, Problem: fe.Problem}
}

// shiftBody is a canary's new share, or its analysis: with auto and no
// share, the analysis starts at its first step.
type shiftBody struct {
	Share *int            `json:"share"`
	Auto  json.RawMessage `json:"auto"`
}

func (s *Server) postCanary(w http.ResponseWriter, r *http.Request) {
	var body shiftBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		auto, err := decodeAnalysis(body.Auto, "auto.")
		if err != nil {
			return "", nil, err
		}
		shift := &events.CanaryShifted{Auto: auto}
		switch {
		case body.Share != nil:
			shift.Share = *body.Share
		case auto != nil && len(auto.Steps) > 0:
			shift.Share = auto.Steps[0]
		default:
			return "", nil, badRequest("share", `share is missing: want {"share": 50}, or {"auto": {…}} to start the analysis`)
		}
		return built(events.KindCanaryShifted)(change.Shift(sc, shift))
	})
}

func (s *Server) postPromote(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		return events.KindCanaryPromoted, change.Promote(sc), nil
	})
}

type abortBody struct {
	Reason string `json:"reason"`
}

func (s *Server) postAbort(w http.ResponseWriter, r *http.Request) {
	var body abortBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		return built(events.KindCanaryAborted)(change.Abort(sc, body.Reason))
	})
}

type pauseBody struct {
	Max    *events.Duration `json:"max"`
	Reason string           `json:"reason"`
}

func (s *Server) postPause(w http.ResponseWriter, r *http.Request) {
	var body pauseBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		max := events.DefaultPauseMax
		if body.Max != nil {
			max = time.Duration(*body.Max)
		}
		return built(events.KindPaused)(change.Pause(sc, max, body.Reason))
	})
}

func (s *Server) postResume(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		return events.KindResumed, change.Resume(sc), nil
	})
}

// maintenanceBody puts the page up ({"on": true, "message": "…"}) or
// takes it down ({"on": false}).
type maintenanceBody struct {
	On      *bool  `json:"on"`
	Message string `json:"message"`
}

func (s *Server) postMaintenance(w http.ResponseWriter, r *http.Request) {
	var body maintenanceBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		switch {
		case body.On == nil:
			return "", nil, badRequest("on", `on is missing: want {"on": true, "message": "…"} or {"on": false}`)
		case !*body.On && body.Message != "":
			return "", nil, badRequest("message", "message is for putting the page up (on: true); taking it down needs none")
		case *body.On:
			return built(events.KindMaintenanceOn)(change.MaintenanceOn(sc, body.Message))
		}
		return events.KindMaintenanceOff, change.MaintenanceOff(sc), nil
	})
}
