package balancer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// attempt is one request's routing state, carried in its context from the
// handler to the proxy's hooks and the retrying transport. It is pooled.
type attempt struct {
	pool    *Pool
	backend *Backend
	status  int
	retried bool

	cache    *cache
	cacheKey string
}

type attemptKey struct{}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// newProxy builds the one ReverseProxy every request goes through; the
// per-request target comes from the attempt.
func (b *Balancer) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      &retryTransport{base: b.transport, b: b},
		ModifyResponse: b.modifyResponse,
		ErrorHandler:   b.proxyError,
		BufferPool:     newBufferPool(),
		ErrorLog:       slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
}

func rewrite(pr *httputil.ProxyRequest) {
	a := attemptFrom(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = a.backend.Addr
	pr.Out.Host = pr.In.Host // virtual hosts on the backend see the name asked for
	setForwarded(pr.Out.Header, pr.In.Header["X-Forwarded-For"], pr.In.RemoteAddr, pr.In.Host, pr.In.TLS != nil)
}

func (b *Balancer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	b.active.Add(1)
	defer b.active.Add(-1)
	if b.draining.Load() && r.Header.Get("Upgrade") == "" {
		// The client closes this keep-alive connection itself after the
		// answer, instead of racing its next request against our close.
		w.Header().Set("Connection", "close")
	}
	start := b.cfg.Now()
	t := b.table.Load()
	if t == nil {
		b.unrouted.inc(http.StatusServiceUnavailable)
		b.pages.write(w, http.StatusServiceUnavailable, b.retryAfter)
		b.accessLog(r, nil, http.StatusServiceUnavailable, start)
		return
	}
	p := t.Route(r.Host)
	if p == nil {
		b.unrouted.inc(http.StatusNotFound)
		b.pages.write(w, http.StatusNotFound, nil)
		b.accessLog(r, nil, http.StatusNotFound, start)
		return
	}
	if p.Paused != nil || p.Maintenance != nil {
		if p = b.gate(w, r, p, start); p == nil {
			return // answered: a maintenance page, or a pause's 503
		}
	}
	live := p.live
	if b.cfg.MaxBody > 0 && r.ContentLength > b.cfg.MaxBody {
		b.reject(w, r, p, http.StatusRequestEntityTooLarge, nil, start)
		return
	}
	a := b.attempts.Get().(*attempt)
	defer func() {
		*a = attempt{}
		b.attempts.Put(a)
	}()
	a.pool = p
	if c := p.cache; c != nil {
		lookup, store := cacheLookup(r)
		if lookup || store {
			a.cacheKey = normalizeHost(r.Host) + r.URL.RequestURI()
		}
		if lookup {
			if e := c.get(a.cacheKey, start); e != nil {
				live.cacheHits.Add(1)
				serveCached(w, e, start)
				live.none.inc(http.StatusOK)
				live.latency.observe(b.cfg.Now().Sub(start))
				b.accessLog(r, nil, http.StatusOK, start)
				return
			}
		}
		if store {
			a.cache = c
		}
	}
	prefer := sideAny
	c := p.canary()
	sticky := c != nil && c.Sticky
	if sticky {
		prefer = stickySide(r, c.ID)
	}
	i := p.pickFor(start.UnixNano(), nil, prefer)
	if i < 0 {
		b.reject(w, r, p, http.StatusServiceUnavailable, b.retryAfter, start)
		return
	}
	a.backend = &p.Backends[i]
	if s := sideFor(a.backend); sticky && s != prefer {
		setCanaryCookie(w, c.ID, s) // a first answer, or its side has no backend left
	}
	a.backend.st.inflight.Add(1)
	// Deferred: ReverseProxy panics with http.ErrAbortHandler when a
	// response breaks off mid-body, and the counts must still settle.
	defer b.finish(r, a, start)
	if b.cfg.MaxBody > 0 && r.ContentLength != 0 {
		r.Body = http.MaxBytesReader(w, r.Body, b.cfg.MaxBody)
	}
	b.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)))
}

// finish settles a proxied request: in-flight count, status, latency, log.
func (b *Balancer) finish(r *http.Request, a *attempt, start time.Time) {
	a.backend.st.inflight.Add(-1)
	if a.status == 0 {
		a.status = http.StatusBadGateway
	}
	a.backend.st.codes.inc(a.status)
	if a.status != http.StatusSwitchingProtocols {
		d := b.cfg.Now().Sub(start)
		a.pool.live.latency.observe(d)
		if c := a.pool.stats; c != nil {
			c.observe(a.backend.Canary, a.status, d)
		}
	}
	b.accessLog(r, a.backend, a.status, start)
}

// reject answers a routed request without a backend.
func (b *Balancer) reject(w http.ResponseWriter, r *http.Request, p *Pool, code int, retryAfter []string, start time.Time) {
	p.live.none.inc(code)
	b.pages.write(w, code, retryAfter)
	b.accessLog(r, nil, code, start)
}

func (b *Balancer) modifyResponse(res *http.Response) error {
	a := attemptFrom(res.Request.Context())
	if a == nil {
		return nil
	}
	a.status = res.StatusCode
	if a.cache != nil {
		res.Header["X-Hoist-Cache"] = cacheMiss
		if ttl, ok := cacheTTL(res, a.cache.ttl); ok && res.ContentLength <= a.cache.maxEntry {
			now := b.cfg.Now()
			res.Body = &fillBody{
				rc: res.Body, c: a.cache, want: res.ContentLength,
				entry: &cacheEntry{key: a.cacheKey, header: res.Header.Clone(), stored: now, expires: now.Add(ttl)},
			}
		}
	}
	return nil
}

var (
	cacheMiss = []string{"miss"}
	cacheHit  = []string{"hit"}
)

func serveCached(w http.ResponseWriter, e *cacheEntry, now time.Time) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h["X-Hoist-Cache"] = cacheHit
	h.Set("Age", strconv.Itoa(int(now.Sub(e.stored)/time.Second)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}

// proxyError answers a request whose backends failed: 413 for an
// over-long body, 504 for a timeout, 503 when no backend of the scope is
// left alive, else 502.
func (b *Balancer) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptFrom(r.Context())
	if a == nil {
		b.pages.write(w, http.StatusBadGateway, nil)
		return
	}
	if a.status == http.StatusSwitchingProtocols {
		return // the connection is hijacked; nothing to answer on
	}
	var (
		tooLarge *http.MaxBytesError
		netErr   net.Error
		code     = http.StatusBadGateway
		after    []string
	)
	switch {
	case errors.As(err, &tooLarge):
		code = http.StatusRequestEntityTooLarge
	case r.Context().Err() != nil:
		code = 499 // the client went away
	case errors.As(err, &netErr) && netErr.Timeout():
		code = http.StatusGatewayTimeout
	case !a.pool.anyAlive(b.cfg.Now().UnixNano()):
		code, after = http.StatusServiceUnavailable, b.retryAfter
	}
	a.status = code
	b.log.Debug("proxy error", "scope", a.pool.live.name, "backend", a.backend.Addr, "code", code, "err", err)
	b.pages.write(w, code, after)
}

func (b *Balancer) accessLog(r *http.Request, be *Backend, code int, start time.Time) {
	level := slog.LevelDebug
	if b.cfg.AccessLog {
		level = slog.LevelInfo
	}
	if !b.log.Enabled(r.Context(), level) {
		return
	}
	backend := ""
	if be != nil {
		backend = be.Addr
	}
	b.log.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method), slog.String("host", r.Host), slog.String("uri", r.RequestURI),
		slog.Int("status", code), slog.String("backend", backend),
		slog.Duration("duration", b.cfg.Now().Sub(start)), slog.String("remote", r.RemoteAddr))
}

// bufferPool recycles the proxy's copy buffers, which would otherwise be a
// 32 KiB allocation per request.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }
