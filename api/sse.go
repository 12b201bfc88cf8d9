package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/view"
)

// GET /v1/events is a Server-Sent Events stream of changes:
//
//   - "event": a scope event (or a rejected message) at its revision, with
//     its HOIST_EVENTS sequence as the SSE id. A client that reconnects
//     with Last-Event-ID (browsers do so by themselves), or that passes
//     ?since=SEQ, gets every scope event after that one, exactly once;
//   - "status", "backends", "score", "node": a node's report, a backends
//     set, a score, a drain. These are observations, not history, and
//     carry no id: after a reconnect, read the current ones from the API;
//   - "reset": the stream cannot resume from the id given (too old, or the
//     server was restored): read everything again.
//
// ?scope=SCOPE keeps one scope's messages (and the node events). Without
// it a client gets what its token may read.

// keepAlive is how often an idle stream gets a comment, so proxies and
// clients see it is alive.
const keepAlive = 15 * time.Second

// sseEvent is the data of an "event": a log entry with its scope.
type sseEvent struct {
	Scope string `json:"scope"`
	view.LogEntry
}

func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	p, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var only events.Scope
	if v := r.URL.Query().Get("scope"); v != "" {
		if only, err = events.ParseScope(v); err != nil {
			s.fail(w, r, badRequest("scope", err.Error()))
			return
		}
		if err := p.mayReadScope(only); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	resume, after := false, uint64(0)
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			s.fail(w, r, badRequest("Last-Event-ID", fmt.Sprintf("%q: want the id of the last event received (a stream sequence)", v)))
			return
		}
		resume, after = true, n
		break // the header, which the browser keeps current, wins
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, fmt.Errorf("streaming is not supported here"))
		return
	}
	if err := s.waitReady(r); err != nil {
		s.fail(w, r, err)
		return
	}
	sub, past, ok := s.hub.subscribe(after, resume)
	defer s.hub.unsubscribe(sub)
	s.sseActive.Add(1)
	defer s.sseActive.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A browser reconnects after 1s, so a dropped stream costs little.
	fmt.Fprint(w, "retry: 1000\n: connected\n\n")
	if !ok {
		fmt.Fprint(w, "event: reset\ndata: {}\n\n")
	}
	send := func(it item) bool {
		if it.kind == "reset" {
			_, err := fmt.Fprint(w, "event: reset\ndata: {}\n\n")
			return err == nil
		}
		a := it.rec.Address
		if !only.IsZero() && a.Family != events.FamilyNode && a.Scope != only {
			return true
		}
		if !p.canSee(it.rec.Message, a) {
			return true
		}
		data, id := s.sseData(it)
		if data == nil {
			return true
		}
		var b strings.Builder
		if id != "" {
			b.WriteString("id: " + id + "\n")
		}
		b.WriteString("event: " + it.kind + "\ndata: ")
		b.Write(data)
		b.WriteString("\n\n")
		_, err := w.Write([]byte(b.String()))
		return err == nil
	}
	for _, it := range past {
		if !send(it) {
			return
		}
	}
	flusher.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case it, open := <-sub.ch:
			if !open {
				return // too slow: the client reconnects and resumes
			}
			if !send(it) {
				return
			}
			// Send what is queued, then flush once.
			for n := len(sub.ch); n > 0; n-- {
				if it, open = <-sub.ch; !open || !send(it) {
					return
				}
			}
		}
		flusher.Flush()
	}
}

// sseData is the JSON of one item, and its id ("" for none).
func (s *Server) sseData(it item) ([]byte, string) {
	rec := it.rec
	var v any
	switch it.kind {
	case "event":
		e := sseEvent{Scope: rec.Scope.String(), LogEntry: view.NewLogEntry(rec)}
		if e.Data != nil {
			e.Data = view.MaskPayload(e.Data)
		}
		b, _ := json.Marshal(e)
		return b, strconv.FormatUint(it.seq, 10)
	case "status":
		st := rec.Status
		if st == nil || len(st.Scopes) != 1 {
			return nil, ""
		}
		sc := st.Scopes[0]
		v = map[string]any{"node": st.Node, "scope": sc.Scope.String(), "desired": sc.Desired, "applied": sc.Applied, "phase": sc.Phase, "error": sc.Error}
	case "backends":
		if rec.Backends == nil {
			return nil, ""
		}
		v = map[string]any{"node": rec.Backends.Node, "scope": rec.Backends.Scope.String(), "revision": rec.Backends.Revision, "backends": rec.Backends.Backends}
	case "score":
		if rec.Event == nil {
			return nil, ""
		}
		v = map[string]any{"scope": rec.Scope.String(), "backend": rec.Backend, "data": rec.Event.Data}
	case "node":
		if rec.Err != nil {
			return nil, ""
		}
		v = map[string]any{"node": rec.Node, "kind": rec.Kind, "actor": rec.Actor}
	default:
		return nil, ""
	}
	b, _ := json.Marshal(v)
	return b, ""
}
