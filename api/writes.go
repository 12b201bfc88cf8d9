package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
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

// write decodes the body into body (when not nil), lets build make the
// change, checks the token may publish its kind on the path's scope, and
// publishes it conditionally on If-Match.
func (s *Server) write(w http.ResponseWriter, r *http.Request, body any, build func(events.Scope) (events.Kind, change.Builder, error)) {
	err := func() error {
		p, err := s.who(r)
		if err != nil {
			return err
		}
		sc, err := pathScope(r)
		if err != nil {
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
		kind, b, err := build(sc)
		if err != nil {
			return err
		}
		if err := p.mayPublish(events.ScopeSubject(sc, kind, p.actor)); err != nil {
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
	return decodeStrict(b, v, "")
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// with the fields it names under prefix ("canary." for an object the body
// holds). Empty input is an empty object.
func decodeStrict(b []byte, v any, prefix string) error {
	if strings.TrimSpace(string(b)) == "" {
		b = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var he *httpError
		var typeErr *json.UnmarshalTypeError
		var syntax *json.SyntaxError
		switch {
		case errors.As(err, &he): // from a body's own UnmarshalJSON
			return he
		case errors.As(err, &typeErr):
			field := prefix + typeErr.Field
			want := typeErr.Type.String()
			if typeErr.Type == reflect.TypeFor[events.Duration]() {
				want = `a duration like "30s"`
			}
			return badRequest(field, fmt.Sprintf("%s: want %s, got a JSON %s", field, want, typeErr.Value))
		case errors.As(err, &syntax):
			return badRequest("", fmt.Sprintf("the body is not JSON: %v at byte %d", err, syntax.Offset))
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			name = prefix + strings.Trim(name, `"`)
			return badRequest(name, fmt.Sprintf("unknown field %q", name))
		}
		return badRequest(strings.TrimSuffix(prefix, "."), "the body: "+err.Error())
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
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		if body.Replicas == nil {
			return "", nil, badRequest("replicas", `replicas is missing: want {"replicas": N}`)
		}
		return built(events.KindScaled)(change.Scale(sc, *body.Replicas))
	})
}

type envBody struct {
	Set   map[string]string `json:"set"`
	Unset []string          `json:"unset"`
}

func (s *Server) postEnv(w http.ResponseWriter, r *http.Request) {
	var body envBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		for k, v := range body.Set {
			if err := events.ValidateEnv(k, v); err != nil {
				return "", nil, err
			}
		}
		return built(events.KindEnvChanged)(change.Env(sc, body.Set, body.Unset))
	})
}

type rollbackBody struct {
	// To is the revision to restore; absent or 0 is the latest earlier
	// one whose spec differs.
	To uint64 `json:"to"`
}

func (s *Server) postRollback(w http.ResponseWriter, r *http.Request) {
	var body rollbackBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		return events.KindRolledBack, change.Rollback(sc, body.To), nil
	})
}

func (s *Server) postRemove(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		return events.KindRemoved, change.Remove(sc), nil
	})
}

// deployBody is a deploy's change to the spec, or, with canary, the spec
// a canary of it runs beside the stable one.
type deployBody struct {
	change.SpecChange
	Canary json.RawMessage
}

// UnmarshalJSON takes "canary" out and decodes the rest strictly as the
// spec change, so that its fields are named as the body names them.
func (b *deployBody) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return badRequest("", "the body must be a JSON object")
	}
	if c := fields["canary"]; string(c) != "null" {
		b.Canary = c // absent or null: no canary
	}
	delete(fields, "canary")
	rest, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return decodeStrict(rest, &b.SpecChange, "")
}

func (s *Server) postDeploy(w http.ResponseWriter, r *http.Request) {
	var body deployBody
	s.write(w, r, &body, func(sc events.Scope) (events.Kind, change.Builder, error) {
		if body.Canary != nil {
			return startCanary(sc, &body.SpecChange, body.Canary)
		}
		if err := body.Check(); err != nil {
			return "", nil, err
		}
		b, _, err := change.Deploy(body.Apply)
		return events.KindDeployed, b, err
	})
}

// built pairs a builder and its error with the kind it publishes.
func built(kind events.Kind) func(change.Builder, error) (events.Kind, change.Builder, error) {
	return func(b change.Builder, err error) (events.Kind, change.Builder, error) { return kind, b, err }
}
