package balancer

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// newTransport is the upstream transport: keep-alive connections kept
// warm per backend, bounded dial and header waits, and no transparent
// compression (the client's Accept-Encoding goes through untouched).
func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          0, // no global cap; per host below
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}

// retryTransport sends a request to the backend its attempt picked. When
// the backend cannot be reached (or, with DeadOn5xx, answers 5xx) it marks
// it dead, and a retryable request goes once more to another backend.
type retryTransport struct {
	base http.RoundTripper
	b    *Balancer
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptFrom(req.Context())
	if a == nil {
		return t.base.RoundTrip(req)
	}
	for {
		res, err := t.base.RoundTrip(req)
		if !t.failed(req, a, res, err) {
			return res, err
		}
		if a.retried || !retryable(req) {
			return res, err
		}
		now := t.b.cfg.Now()
		next := a.pool.pickFor(now.UnixNano(), a.backend.st, sideFor(a.backend))
		if next < 0 {
			return res, err
		}
		if res != nil {
			_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
			res.Body.Close()
		}
		a.retried = true
		a.pool.live.retries.Add(1)
		a.backend.st.inflight.Add(-1)
		a.backend = &a.pool.Backends[next]
		a.backend.st.inflight.Add(1)
		r2 := new(http.Request)
		*r2 = *req
		u := *req.URL
		u.Host = a.backend.Addr
		r2.URL = &u
		req = r2
	}
}

// failed says whether the backend failed this request, and marks it dead
// if so. A client that went away, or a body over the limit, is not the
// backend's fault.
func (t *retryTransport) failed(req *http.Request, a *attempt, res *http.Response, err error) bool {
	if err == nil {
		if res.StatusCode < 500 || !t.b.cfg.DeadOn5xx {
			return false
		}
	} else {
		var tooLarge *http.MaxBytesError
		if req.Context().Err() != nil || errors.As(err, &tooLarge) {
			return false
		}
	}
	st, now := a.backend.st, t.b.cfg.Now()
	st.failures.Add(1)
	wasDead := st.dead(now.UnixNano())
	st.markDead(now.Add(t.b.cfg.DeadTTL))
	if !wasDead { // log the change, not every failure
		t.b.log.Warn("backend marked dead", "scope", a.pool.live.name, "backend", a.backend.Addr,
			"for", t.b.cfg.DeadTTL, "err", errOrStatus(err, res))
	}
	return true
}

func errOrStatus(err error, res *http.Response) any {
	if err != nil {
		return err
	}
	return res.Status
}

// retryable: requests that can be replayed safely. POST and PATCH never
// are; others only without a body (a streamed body cannot be sent twice).
func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodPost, http.MethodPatch, http.MethodConnect:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody
}
