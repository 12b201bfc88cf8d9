package api

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/view"
)

// The dashboard: server-rendered pages from Go templates. One small
// script (ui/static/app.js, no build step) listens to /v1/events with the
// browser's EventSource and, on a change, fetches the page's live parts
// again (/scopes/{scope}/part/live) and swaps the ones that differ. The
// pages work without it, only not live.

//go:embed ui
var uiFiles embed.FS

// cookieName holds a dashboard session's token (HttpOnly, SameSite=Strict).
const cookieName = "hoist_token"

type ui struct {
	pages  map[string]*template.Template
	static http.Handler
}

func newUI() (*ui, error) {
	funcs := template.FuncMap{
		"ago":      ago,
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"stamp":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"pct":      func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
		"rate":     fmtRate,
		"sparkSVG": sparkSVG,
		"join":     strings.Join,
		"canary":   view.DescribeCanary,
	}
	u := &ui{pages: map[string]*template.Template{}}
	for _, page := range []string{"scopes", "scope", "login"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", "ui/parts.html", "ui/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard templates: %w", err)
		}
		u.pages[page] = t
	}
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		return nil, err
	}
	u.static = http.FileServerFS(sub)
	return u, nil
}

func (u *ui) staticHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	u.static.ServeHTTP(w, r)
}

// render writes a template as a page, or one named block of it.
func (u *ui) render(w http.ResponseWriter, page, block string, status int, data any) {
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, block, data); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageBase is what every page shows in its header.
type pageBase struct {
	Title string
	Who   *whoJSON
	// Since is the HOIST_EVENTS sequence the page was rendered at: its
	// event stream starts right after it, so nothing between is missed.
	Since uint64
	Error string
}

func (s *Server) base(p *principal, title string) pageBase {
	b := pageBase{Title: title, Since: s.hub.lastSeq()}
	if p != nil {
		b.Who = &whoJSON{Name: p.actor, Role: string(p.role.Kind), Scopes: p.role.Scopes, Anonymous: p.anonymous}
	}
	return b
}

// uiWho authenticates a page request; without rights it sends the
// browser to the login page and returns nil.
func (s *Server) uiWho(w http.ResponseWriter, r *http.Request) *principal {
	p, err := s.who(r)
	if err != nil {
		http.Redirect(w, r, "/login?next="+template.URLQueryEscaper(r.URL.Path), http.StatusSeeOther)
		return nil
	}
	return p
}

type scopesData struct {
	pageBase
	Scopes []scopeJSON
}

func (u *ui) scopesPage(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { u.scopes(s, w, r, "layout.html") }
}

func (u *ui) scopesPart(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { u.scopes(s, w, r, "scopes-live") }
}

func (u *ui) scopes(s *Server, w http.ResponseWriter, r *http.Request, block string) {
	p := s.uiWho(w, r)
	if p == nil {
		return
	}
	_ = s.waitReady(r)
	d := scopesData{pageBase: s.base(p, "Scopes")}
	list, err := s.scopes(r.Context(), p)
	if err != nil {
		d.Error = asHTTP(err).Msg
	}
	d.Scopes = list
	u.render(w, "scopes", block, http.StatusOK, d)
}

// scopeData is the scope page.
type scopeData struct {
	pageBase
	Scope    string
	Head     uint64
	Health   string
	Reason   string
	State    view.State
	Fields   []fieldDelta // the current spec, as fields (From unused)
	Deployed bool
	Timeline []timelineRow
	Nodes    []projector.NodeView
	Backends backendsJSON
	// Previous is the target of a plain rollback (0: none).
	Previous uint64
	CanWrite bool
	Diff     *diffJSON
	DiffErr  string
	Revs     []uint64
	From, To uint64
}

// timelineRow is one revision of the timeline, newest first.
type timelineRow struct {
	Revision    uint64
	Time        time.Time
	Actor       string
	Kind        string
	What        string
	Rejected    string
	CanRollback bool
}

func (u *ui) scopePage(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { u.scope(s, w, r, "layout.html") }
}

func (u *ui) scopePart(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("part") != "live" {
			http.NotFound(w, r)
			return
		}
		u.scope(s, w, r, "scope-live")
	}
}

func (u *ui) scope(s *Server, w http.ResponseWriter, r *http.Request, block string) {
	p := s.uiWho(w, r)
	if p == nil {
		return
	}
	_ = s.waitReady(r)
	d, status := s.scopeData(r, p)
	u.render(w, "scope", block, status, d)
}

func (s *Server) scopeData(r *http.Request, p *principal) (scopeData, int) {
	d := scopeData{pageBase: s.base(p, r.PathValue("scope")), Scope: r.PathValue("scope")}
	sc, hist, err := s.readScope(r)
	if err != nil {
		he := asHTTP(err)
		d.Error = he.Msg
		return d, he.status
	}
	h, _ := projector.Fold(sc, hist.Records)
	st, _ := stateAt(h, hist, 0, "")
	d.Head = hist.Head.Revision
	d.State = view.NewState(st, false)
	d.Deployed = st.Spec != nil
	for k, v := range fields(st) {
		d.Fields = append(d.Fields, fieldDelta{Field: k, To: v})
	}
	slices.SortFunc(d.Fields, func(a, b fieldDelta) int {
		return cmp.Or(cmp.Compare(fieldOrder(a.Field), fieldOrder(b.Field)), strings.Compare(a.Field, b.Field))
	})
	d.Previous, _ = h.PreviousRevision()
	d.CanWrite = p.mayPublish(events.ScopeSubject(sc, events.KindRolledBack, p.actor)) == nil
	for i := len(hist.Records) - 1; i >= 0; i-- {
		rec := hist.Records[i]
		e := view.NewLogEntry(rec)
		row := timelineRow{Revision: e.Revision, Time: e.Time, Actor: e.Actor, Kind: string(e.Kind), Rejected: e.Rejected}
		if rec.Err == nil {
			row.What = view.Describe(rec.Event, false)
			// A revision that kept the spec (a traffic change, a grant) holds
			// the same one as the head: rolling back to it restores nothing.
			if at, err := h.At(rec.Revision); err == nil && rec.Revision < d.Head && at.Spec != nil && !at.Removed && at.Spec != st.Spec {
				row.CanRollback = true
			}
		}
		d.Timeline = append(d.Timeline, row)
		d.Revs = append(d.Revs, rec.Revision)
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	if statuses, err := s.store.NodeStatuses(ctx, sc, nil); err == nil {
		d.Nodes = projector.StatusView(statuses, sc, s.now())
		d.Health, d.Reason = s.health(statuses, sc, d.Head)
	} else {
		d.Health, d.Reason = "unknown", err.Error()
	}
	if s.mayReadBackends(p, sc) == nil {
		d.Backends = s.backends(sc)
	}
	d.From, d.To = d.Previous, d.Head
	if d.From == 0 && d.Head > 1 {
		d.From = d.Head - 1
	}
	q := r.URL.Query()
	if q.Get("from") != "" {
		from, err1 := revisionParam(r, "from")
		to, err2 := revisionParam(r, "to")
		if err1 == nil && err2 == nil {
			var diff diffJSON
			if diff, err = diffOf(h, hist, from, to); err == nil {
				d.Diff, d.From, d.To = &diff, diff.From, diff.To
			}
		} else {
			err = err1
			if err == nil {
				err = err2
			}
		}
		if err != nil {
			d.DiffErr = asHTTP(err).Msg
		}
	}
	return d, http.StatusOK
}

// fieldOrder keeps the spec's fields in the order people read them.
func fieldOrder(f string) int {
	order := []string{"image", "command", "replicas", "port", "env", "secret", "hosts", "health_path", "surge", "health_timeout", "restart", "memory_mb", "cpus", "cache", "removed"}
	name, _, _ := strings.Cut(f, " ")
	if i := slices.Index(order, name); i >= 0 {
		return i
	}
	return len(order)
}

type loginData struct {
	pageBase
	Next string
}

func (u *ui) loginPage(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.render(w, "login", "layout.html", http.StatusOK, loginData{pageBase: pageBase{Title: "Sign in"}, Next: safeNext(r.URL.Query().Get("next"))})
	}
}

func (u *ui) login(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimSpace(r.PostFormValue("token"))
		next := safeNext(r.PostFormValue("next"))
		if s.opts.Tokens == nil {
			u.render(w, "login", "layout.html", http.StatusUnauthorized, loginData{pageBase: pageBase{Title: "Sign in", Error: "this API takes no tokens (start it with --tokens FILE)"}, Next: next})
			return
		}
		if _, ok := s.opts.Tokens.Lookup(token); !ok {
			u.render(w, "login", "layout.html", http.StatusUnauthorized, loginData{pageBase: pageBase{Title: "Sign in", Error: "unknown token"}, Next: next})
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) {
		return "/"
	}
	return next
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func fmtRate(r *float64) string {
	if r == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f/s", *r)
}

// sparkSVG draws the last minute of request rates as a small inline SVG.
func sparkSVG(rates []float64) template.HTML {
	const w, h = 240, 48
	top := 1.0
	for _, r := range rates {
		top = max(top, r)
	}
	var pts strings.Builder
	n := max(len(rates), 2)
	for i, r := range rates {
		x := float64(w) * float64(i) / float64(n-1)
		y := float64(h) - 2 - (float64(h)-4)*r/top
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	label := "no requests seen yet"
	if len(rates) > 0 {
		label = fmt.Sprintf("requests per second over the last %d seconds; now %.1f, peak %.1f", len(rates), rates[len(rates)-1], top)
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s"><title>%s</title><line x1="0" y1="%d" x2="%d" y2="%d" class="axis"/><polyline points="%s"/></svg>`,
		w, h, w, h, template.HTMLEscapeString(label), template.HTMLEscapeString(label), h-1, w, h-1, strings.TrimSpace(pts.String())))
}
