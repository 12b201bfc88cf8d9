package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hoist-dev/hoist/auth"
	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/internal/lifecycle"
)

// Options configure a Server.
type Options struct {
	Store *store.Store
	// Tokens looks bearer tokens up; nil accepts none.
	Tokens *Tokens
	// Anonymous is the role of a request without a token: nil refuses it
	// (401). 'hoist dev' on loopback gives admin, --public-read a reader.
	Anonymous *auth.Role
	// AnonymousActor is who anonymous writes are recorded as (default: the
	// anonymous role's name).
	AnonymousActor string
	// Traffic, when set, says how many requests the balancers answered,
	// for request rates.
	Traffic Traffic
	// ExtraMetrics write more Prometheus text after the API's own on
	// /metrics ('hoist dev' adds its agent and balancer).
	ExtraMetrics []func(io.Writer) error
	Version      string
	Logger       *slog.Logger
	// Now is the clock for node liveness and scores; nil is time.Now.
	Now func() time.Time
}

// Server is the HTTP API and the dashboard. Open starts its stream
// readers, Close stops them and waits.
type Server struct {
	opts    Options
	store   *store.Store
	log     *slog.Logger
	now     func() time.Time
	hub     *hub
	traffic *sampler
	anon    *principal
	ui      *ui

	run *lifecycle.Group // the stream readers and the traffic sampler

	requests  requestCounts
	sseActive atomic.Int64
	writes    atomic.Uint64
}

// Open starts a server's stream readers (and its traffic sampler).
func Open(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("api: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, store: opts.Store, log: opts.Logger, now: opts.Now}
	if opts.Anonymous != nil {
		p, err := newPrincipal(*opts.Anonymous, true)
		if err != nil {
			return nil, fmt.Errorf("api: anonymous role: %w", err)
		}
		if opts.AnonymousActor != "" {
			p.actor = opts.AnonymousActor
		}
		s.anon = p
	}
	ui, err := newUI()
	if err != nil {
		return nil, err
	}
	s.ui = ui
	s.run = lifecycle.New(context.Background(), opts.Logger, 0)
	s.hub = newHub(opts.Store, opts.Logger)
	s.hub.run(s.run)
	s.traffic = newSampler(opts.Traffic, opts.Now)
	if opts.Traffic != nil {
		s.run.Go("api traffic sampler", func(ctx context.Context) { s.traffic.run(ctx, opts.Logger) })
	}
	return s, nil
}

// Close stops the readers and waits for them (a bounded wait, which names
// a reader that did not end); safe to call twice. Open SSE streams end
// when their requests do (http.Server.Shutdown).
func (s *Server) Close() { s.run.Stop() }

// Ready is closed once every stream has been read up to where it stood.
func (s *Server) Ready() <-chan struct{} { return s.hub.ready }

// route is one endpoint. The ones with api set are the HTTP API, which
// /v1/openapi.json describes (a test holds the two together).
type route struct {
	method, pattern string
	handle          func(http.ResponseWriter, *http.Request)
	api             bool
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/v1/scopes", s.listScopes, true},
		{"GET", "/v1/scopes/{scope}", s.getState, true},
		{"GET", "/v1/scopes/{scope}/log", s.getLog, true},
		{"GET", "/v1/scopes/{scope}/status", s.getStatus, true},
		{"GET", "/v1/scopes/{scope}/backends", s.getBackends, true},
		{"GET", "/v1/scopes/{scope}/diff", s.getDiff, true},
		{"POST", "/v1/scopes/{scope}/deploy", s.postDeploy, true},
		{"POST", "/v1/scopes/{scope}/scale", s.postScale, true},
		{"POST", "/v1/scopes/{scope}/env", s.postEnv, true},
		{"POST", "/v1/scopes/{scope}/rollback", s.postRollback, true},
		{"POST", "/v1/scopes/{scope}/remove", s.postRemove, true},
		{"POST", "/v1/scopes/{scope}/canary", s.postCanary, true},
		{"POST", "/v1/scopes/{scope}/promote", s.postPromote, true},
		{"POST", "/v1/scopes/{scope}/abort", s.postAbort, true},
		{"POST", "/v1/scopes/{scope}/pause", s.postPause, true},
		{"POST", "/v1/scopes/{scope}/resume", s.postResume, true},
		{"POST", "/v1/scopes/{scope}/maintenance", s.postMaintenance, true},
		{"GET", "/v1/events", s.streamEvents, true},
		{"GET", "/v1/whoami", s.whoami, true},
		{"GET", "/v1/openapi.json", s.openAPI, true},
		{"GET", "/healthz", s.healthz, true},
		{"GET", "/metrics", s.metrics, true},

		{"GET", "/{$}", s.ui.scopesPage(s), false},
		{"GET", "/scopes/{scope}", s.ui.scopePage(s), false},
		{"GET", "/scopes/{scope}/part/{part}", s.ui.scopePart(s), false},
		{"GET", "/parts/scopes", s.ui.scopesPart(s), false},
		{"GET", "/login", s.ui.loginPage(s), false},
		{"POST", "/login", s.ui.login(s), false},
		{"POST", "/logout", s.ui.logout, false},
		{"GET", "/static/", s.ui.staticHandler, false},
	}
}

// Handler serves the API and the dashboard. Cross-origin writes from a
// browser are refused (http.CrossOriginProtection), so another site open
// in the same browser cannot use a dashboard's session or 'hoist dev”s
// anonymous admin.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.method+" "+rt.pattern, s.count(rt.pattern, rt.handle))
	}
	return http.NewCrossOriginProtection().Handler(mux)
}

// Serve answers on ln until ctx ends, then shuts down within timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	srv.RegisterOnShutdown(s.Close) // ends the SSE streams
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	return err
}

// who authenticates a request: a bearer token (header, or the dashboard's
// cookie), else the anonymous role.
func (s *Server) who(r *http.Request) (*principal, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		if c, err := r.Cookie(cookieName); err == nil {
			token = c.Value
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		if s.anon == nil {
			return nil, &denial{status: http.StatusUnauthorized, msg: "this API needs a token: Authorization: Bearer TOKEN (see 'hoist api token --help')"}
		}
		return s.anon, nil
	}
	if s.opts.Tokens == nil {
		return nil, &denial{status: http.StatusUnauthorized, msg: "this API takes no tokens (start it with --tokens FILE)"}
	}
	role, ok := s.opts.Tokens.Lookup(token)
	if !ok {
		return nil, &denial{status: http.StatusUnauthorized, msg: "unknown token"}
	}
	return newPrincipal(role, false)
}

// waitReady holds a request that needs the hub until it caught up.
func (s *Server) waitReady(r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	select {
	case <-s.hub.ready:
		return nil
	case <-ctx.Done():
		return &httpError{status: http.StatusServiceUnavailable, Msg: "the API is still reading the event streams; try again"}
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.hub.ready:
		writeText(w, http.StatusOK, "ok\n")
	default:
		writeText(w, http.StatusServiceUnavailable, "catching up with the event streams\n")
	}
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	scopes := p.role.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	writeJSON(w, http.StatusOK, whoJSON{Name: p.role.Name, Role: string(p.role.Kind), Scopes: scopes, Node: p.role.Node, Anonymous: p.anonymous})
}

type whoJSON struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Scopes    []string `json:"scopes"`
	Node      string   `json:"node,omitempty"`
	Anonymous bool     `json:"anonymous"`
}
