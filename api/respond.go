package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
)

// httpError is an answer other than 2xx, as JSON: {"error": "…"} with the
// field at fault, or both revisions of a conflict.
type httpError struct {
	status   int
	Msg      string  `json:"error"`
	Field    string  `json:"field,omitempty"`
	Expected *uint64 `json:"expected,omitempty"`
	Actual   *uint64 `json:"actual,omitempty"`
}

func (e *httpError) Error() string { return e.Msg }

func badRequest(field, msg string) error {
	return &httpError{status: http.StatusBadRequest, Field: field, Msg: msg}
}

// asHTTP maps an error to its answer: a refusal or invalid field is 400
// naming the field, a conflict 412 with both revisions, a denial 401/403,
// a permission the API's own NATS credential lacks 502.
func asHTTP(err error) *httpError {
	var (
		he       *httpError
		den      *denial
		conflict *store.ConflictError
		refusal  *change.Refusal
		field    *events.FieldError
		scopeErr *events.ScopeError
	)
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &den):
		return &httpError{status: den.status, Msg: den.msg}
	case errors.As(err, &conflict):
		return &httpError{status: http.StatusPreconditionFailed, Msg: conflict.Error(), Expected: &conflict.Expected, Actual: &conflict.Actual}
	case errors.As(err, &refusal):
		return &httpError{status: http.StatusBadRequest, Msg: refusal.Msg, Field: refusal.Field}
	case errors.As(err, &field):
		return &httpError{status: http.StatusBadRequest, Msg: field.Error(), Field: jsonField(field.Field)}
	case errors.As(err, &scopeErr):
		return &httpError{status: http.StatusBadRequest, Msg: scopeErr.Error(), Field: "scope"}
	case errors.Is(err, events.ErrInvalid):
		return &httpError{status: http.StatusBadRequest, Msg: err.Error()}
	case errors.Is(err, store.ErrPermission):
		return &httpError{status: http.StatusBadGateway, Msg: "the API's own NATS credential was refused: " + err.Error()}
	}
	return &httpError{status: http.StatusInternalServerError, Msg: err.Error()}
}

// jsonField turns a validation field ("env \"K\"", "update.surge") into
// the name of the input that holds it.
func jsonField(f string) string {
	name, _, _ := strings.Cut(f, " ")
	return name
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	he := asHTTP(err)
	if he.status >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", he.status, "err", err)
	}
	writeJSON(w, he.status, he)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// ifMatch reads If-Match: a revision, quoted or not. nil without one.
func ifMatch(r *http.Request) (*uint64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return nil, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, badRequest("If-Match", "If-Match "+strconv.Quote(r.Header.Get("If-Match"))+": want the scope's revision the write is for, e.g. If-Match: 7 (0: the scope must be empty)")
	}
	return &n, nil
}

// pathScope reads the {scope} of the path.
func pathScope(r *http.Request) (events.Scope, error) {
	sc, err := events.ParseScope(r.PathValue("scope"))
	if err != nil {
		return events.Scope{}, badRequest("scope", err.Error())
	}
	return sc, nil
}
