package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/view"
)

// The writes publish through package change, as the CLI does: the same
// builders, the same checks against the fold, the same messages. The
// actor is the token's name; the API's own NATS credential must be
// allowed to publish under it (an admin credential is).

const (
	writeTimeout = 30 * time.Second
	maxBody      = 1 << 20
)

// write checks p may publish kind on the path's scope, decodes the body
// into body (when not nil), lets build make the change, and publishes it
// conditionally on If-Match.
func (s *Server) write(w http.ResponseWriter, r *http.Request, kind events.Kind, body any, build func(events.Scope) (change.Builder, error)) {
	err := func() error {
		p, err := s.who(r)
		if err != nil {
			return err
		}
		sc, err := pathScope(r)
		if err != nil {
			return err
		}
		if err := p.mayPublish(events.ScopeSubject(sc, kind, p.actor)); err != nil {
			return err
		}
		expect, err := ifMatch(r)
		if err != nil {
			return err
		}
		if body != nil {
			if err := decodeBody(r, body); err != nil {
				return err
			}
		}
		b, err := build(sc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
		defer cancel()
		ev, err := change.Publish(ctx, s.store, change.Request{Scope: sc, Actor: p.actor, Expect: expect, Build: b})
		if err != nil {
			return err
		}
		s.writes.Add(1)
		s.log.Info("published", "scope", sc, "revision", ev.Revision, "kind", ev.Kind, "actor", ev.Actor)
		w.Header().Set("ETag", etag(ev.Revision))
		writeJSON(w, http.StatusOK, view.Published{
			Scope: sc.String(), Revision: ev.Revision, Kind: ev.Kind, ID: ev.ID, Time: ev.Time, Actor: ev.Actor,
			Data: view.MaskPayload(ev.Data), Summary: view.Describe(ev, false),
		})
		return nil
	}()
	if err != nil {
		s.fail(w, r, err)
	}
}

// decodeBody reads a JSON object strictly: an unknown field or a value of
// the wrong type is a 400 that names it. An empty body is an empty object.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return badRequest("", fmt.Sprintf("read the body: %v (at most %d bytes)", err, maxBody))
	}
	if strings.TrimSpace(string(b)) == "" {
		b = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntax *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			return badRequest(typeErr.Field, fmt.Sprintf("%s: want %s, got a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value))
		case errors.As(err, &syntax):
			return badRequest("", fmt.Sprintf("the body is not JSON: %v at byte %d", err, syntax.Offset))
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			name = strings.Trim(name, `"`)
			return badRequest(name, fmt.Sprintf("unknown field %q", name))
		}
		return badRequest("", "the body: "+err.Error())
	}
	if dec.More() {
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

type scaleBody struct {
	Replicas *int `json:"replicas"`
}

func (s *Server) postScale(w http.ResponseWriter, r *http.Request) {
	var body scaleBody
	s.write(w, r, events.KindScaled, &body, func(sc events.Scope) (change.Builder, error) {
		if body.Replicas == nil {
			return nil, badRequest("replicas", `replicas is missing: want {"replicas": N}`)
		}
		return change.Scale(sc, *body.Replicas)
	})
}

type envBody struct {
	Set   map[string]string `json:"set"`
	Unset []string          `json:"unset"`
}

func (s *Server) postEnv(w http.ResponseWriter, r *http.Request) {
	var body envBody
	s.write(w, r, events.KindEnvChanged, &body, func(sc events.Scope) (change.Builder, error) {
		for k, v := range body.Set {
			if err := events.ValidateEnv(k, v); err != nil {
				return nil, err
			}
		}
		return change.Env(sc, body.Set, body.Unset)
	})
}

type rollbackBody struct {
	// To is the revision to restore; absent or 0 is the latest earlier
	// one whose spec differs.
	To uint64 `json:"to"`
}

func (s *Server) postRollback(w http.ResponseWriter, r *http.Request) {
	var body rollbackBody
	s.write(w, r, events.KindRolledBack, &body, func(sc events.Scope) (change.Builder, error) {
		return change.Rollback(sc, body.To), nil
	})
}

func (s *Server) postRemove(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	s.write(w, r, events.KindRemoved, &body, func(sc events.Scope) (change.Builder, error) {
		return change.Remove(sc), nil
	})
}

func (s *Server) postDeploy(w http.ResponseWriter, r *http.Request) {
	var body change.SpecChange
	s.write(w, r, events.KindDeployed, &body, func(sc events.Scope) (change.Builder, error) {
		if err := body.Check(); err != nil {
			return nil, err
		}
		b, _, err := change.Deploy(body.Apply)
		return b, err
	})
}
