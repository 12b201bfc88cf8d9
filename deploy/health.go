package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// newProbeClient returns the HTTP client of health probes: no redirects
// followed (a 3xx is an answer), no idle connections kept to replicas that
// come and go.
func newProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// probe GETs the health path of rep once. It returns nil for a 2xx or 3xx
// answer, else an error that says what came back.
func (r *Reconciler) probe(ctx context.Context, rep Replica, path string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	target := "http://" + net.JoinHostPort(r.cfg.ProbeHost, strconv.Itoa(rep.HostPort)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err // drop the URL: the message names the path already
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return nil
}

// probeAll probes the health path of every live replica with a port, all at
// once, and records the verdicts in reps.
func (r *Reconciler) probeAll(ctx context.Context, reps []Replica, path string) {
	var wg sync.WaitGroup
	for i := range reps {
		if reps[i].State != StateRunning || reps[i].HostPort == 0 {
			continue
		}
		wg.Go(func() {
			err := r.probe(ctx, reps[i], path)
			reps[i].Healthy = boolPtr(err == nil)
			if err != nil {
				reps[i].Detail = err.Error()
			}
		})
	}
	wg.Wait()
}

// waitHealthy polls a new replica until it is healthy, it stops, or the
// spec's health timeout passes. Healthy means: its health path answers 2xx
// or 3xx when the spec has one (and the replica a port); else the runtime's
// own check (Docker HEALTHCHECK) says healthy; else it has kept running for
// RunningGrace.
func (r *Reconciler) waitHealthy(ctx context.Context, spec *events.Spec, rep Replica) error {
	timeout := spec.EffectiveHealthTimeout()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()

	var runningSince time.Time
	last := "no answer yet"
	for {
		h, err := r.health(ctx, rep.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			return fmt.Errorf("%w: it disappeared", ErrExited)
		case err != nil:
			last = err.Error()
		case !h.State.Alive():
			// It is taken back, and its logs with it: its last lines go
			// into the rollout's error, which the status and wait show.
			rep.State = h.State
			if out := r.lastWords(ctx, rep, h.Detail).Output; len(out) > 0 {
				h.Detail = strings.TrimPrefix(h.Detail+"; last output: "+strings.Join(out, " | "), "; ")
			}
			if h.Detail != "" {
				return fmt.Errorf("%w: %s: %s", ErrExited, h.State, h.Detail)
			}
			return fmt.Errorf("%w: %s", ErrExited, h.State)
		case spec.HealthPath != "" && rep.HostPort > 0:
			err := r.probe(ctx, rep, spec.HealthPath)
			if err == nil {
				return nil
			}
			last = err.Error()
		case h.Check != "":
			if h.Check == "healthy" {
				return nil
			}
			last = "docker health check: " + h.Check
			if h.Detail != "" {
				last += ": " + h.Detail
			}
		default:
			now := r.cfg.Now()
			if runningSince.IsZero() {
				runningSince = now
			}
			if now.Sub(runningSince) >= r.cfg.RunningGrace {
				return nil
			}
			last = "running for less than " + r.cfg.RunningGrace.String()
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("%w within %s: %s", ErrUnhealthy, timeout, last)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Reconciler) health(ctx context.Context, id string) (Health, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	return r.rt.Health(ctx, id)
}
