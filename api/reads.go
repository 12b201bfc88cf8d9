package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/view"
)

// readTimeout bounds a read's calls to NATS.
const readTimeout = 15 * time.Second

// scopeJSON is one scope of GET /v1/scopes.
type scopeJSON struct {
	Scope    string `json:"scope"`
	Revision uint64 `json:"revision"`
	// Health is the rollout verdict of the head on the live nodes:
	// healthy, progressing, failed, removed, or no-nodes.
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) listScopes(w http.ResponseWriter, r *http.Request) {
	p, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.scopes(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// scopes lists the scopes p may read, with their health.
func (s *Server) scopes(ctx context.Context, p *principal) ([]scopeJSON, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	infos, err := s.store.Scopes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list scopes: %w", err)
	}
	statuses := s.hub.statuses()
	out := []scopeJSON{}
	for _, in := range infos {
		if p.mayReadScope(in.Scope) != nil {
			continue
		}
		health, reason := s.health(statuses, in.Scope, in.Revision)
		out = append(out, scopeJSON{Scope: in.Scope.String(), Revision: in.Revision, Health: health, Reason: reason})
	}
	return out, nil
}

// health sums up how the live nodes run a scope's head.
func (s *Server) health(statuses []*events.NodeStatus, sc events.Scope, head uint64) (string, string) {
	ro := projector.RolloutState(statuses, sc, head, s.now())
	views := projector.StatusView(statuses, sc, s.now())
	removed := len(views) > 0
	for _, v := range views {
		removed = removed && v.Phase == events.PhaseRemoved
	}
	switch {
	case ro.Failed:
		return "failed", ro.Reason
	case removed:
		return "removed", ""
	case ro.Done:
		return "healthy", ""
	case len(ro.Nodes) == 0:
		return "no-nodes", ro.Reason
	}
	return "progressing", ro.Reason
}

// readScope checks p may read the path's scope and reads its history.
func (s *Server) readScope(r *http.Request) (events.Scope, *store.History, error) {
	p, err := s.who(r)
	if err != nil {
		return events.Scope{}, nil, err
	}
	sc, err := pathScope(r)
	if err != nil {
		return sc, nil, err
	}
	if err := p.mayReadScope(sc); err != nil {
		return sc, nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	hist, err := s.store.ScopeHistory(ctx, sc, 0)
	if err != nil {
		return sc, nil, fmt.Errorf("read history of %s: %w", sc, err)
	}
	if len(hist.Records) == 0 {
		return sc, nil, &httpError{status: http.StatusNotFound, Msg: fmt.Sprintf("no such scope %s (GET /v1/scopes lists them)", sc)}
	}
	return sc, hist, nil
}

// stateAt returns the state of h, the fold of hist, at rev (0: the head),
// with the time and actor of the event that made it.
func stateAt(h *projector.History, hist *store.History, rev uint64, field string) (projector.State, error) {
	st := h.State()
	if rev != 0 {
		var err error
		if st, err = h.At(rev); err != nil {
			return st, badRequest(field, fmt.Sprintf("%s has revisions 1-%d: there is no revision %d", h.State().Scope, h.Revision(), rev))
		}
	}
	for _, r := range hist.Records {
		if r.Revision == st.Revision {
			e := view.NewLogEntry(r)
			st.Time, st.Actor = e.Time, e.Actor
		}
	}
	return st, nil
}

// revisionParam reads a query parameter that is a revision (0 if absent).
func revisionParam(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, badRequest(name, fmt.Sprintf("%s=%q: want a revision (1, 2, 3 …)", name, v))
	}
	return n, nil
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	at, err := revisionParam(r, "at")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc, hist, err := s.readScope(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, _ := projector.Fold(sc, hist.Records)
	st, err := stateAt(h, hist, at, "at")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(hist.Head.Revision))
	writeJSON(w, http.StatusOK, view.NewState(st, false))
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request) {
	sc, hist, err := s.readScope(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(hist.Head.Revision))
	writeJSON(w, http.StatusOK, logEntries(sc, hist))
}

// logEntries is 'hoist log --json': every message at its revision, the
// rejected ones marked, plain values that look secret masked.
func logEntries(scope events.Scope, hist *store.History) []view.LogEntry {
	out := view.LogEntries(scope, hist.Records)
	for i := range out {
		if out[i].Data != nil {
			out[i].Data = view.MaskPayload(out[i].Data)
		}
	}
	return out
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	views, err := s.status(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, views)
}

// status is 'hoist status SCOPE --json', read from the store.
func (s *Server) status(r *http.Request) ([]projector.NodeView, error) {
	p, err := s.who(r)
	if err != nil {
		return nil, err
	}
	sc, err := pathScope(r)
	if err != nil {
		return nil, err
	}
	if err := p.mayRead(events.ReportsStream, events.StatusFilter(sc)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	statuses, err := s.store.NodeStatuses(ctx, sc, nil)
	if err != nil {
		return nil, fmt.Errorf("read node statuses: %w", err)
	}
	views := projector.StatusView(statuses, sc, s.now())
	if views == nil {
		views = []projector.NodeView{}
	}
	return views, nil
}

func (s *Server) getBackends(w http.ResponseWriter, r *http.Request) {
	p, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc, err := pathScope(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.mayReadBackends(p, sc); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.waitReady(r); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.backends(sc))
}

func (s *Server) mayReadBackends(p *principal, sc events.Scope) error {
	if err := p.mayRead(events.BackendsStream, events.BackendsFilter(sc)); err != nil {
		return err
	}
	return p.mayRead(events.ScoresStream, events.ScoreFilter(sc))
}

func (s *Server) getDiff(w http.ResponseWriter, r *http.Request) {
	from, err := revisionParam(r, "from")
	if err == nil && from == 0 {
		err = badRequest("from", "from: want the revision to compare from")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := revisionParam(r, "to")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc, hist, err := s.readScope(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, _ := projector.Fold(sc, hist.Records)
	d, err := diffOf(h, hist, from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
